package ledger

import (
	"math/bits"
	"strconv"

	"github.com/deoss/deoss/internal/types"
)

func (l *Ledger) transfer(from types.Address, m *Transfer) error {
	if m.Amount == 0 {
		return errf(ErrInvalid, "zero amount")
	}
	if m.To == from {
		return errf(ErrInvalid, "transfer to self")
	}
	if err := l.debit(from, m.Amount); err != nil {
		return err
	}
	if err := l.credit(m.To, m.Amount); err != nil {
		return err
	}
	l.emit(EventTransfer, AttrFrom, from.String(), AttrTo, m.To.String(), AttrAmount, strconv.FormatUint(m.Amount, 10))
	return nil
}

func (l *Ledger) faucet(to types.Address) error {
	s := state{l.o}
	if !s.chain().Dev {
		return errf(ErrUnauthorized, "the faucet exists only on dev chains")
	}
	amount := s.params().FaucetAmount
	if err := l.credit(to, amount); err != nil {
		return err
	}
	l.emit(EventFaucet, AttrTo, to.String(), AttrAmount, strconv.FormatUint(amount, 10))
	return nil
}

func (l *Ledger) debit(a types.Address, amount uint64) error {
	s := state{l.o}
	acc := s.account(a)
	if acc.Balance < amount {
		return errf(ErrInsufficientFunds, "balance %d, need %d", acc.Balance, amount)
	}
	acc.Balance -= amount
	s.putAccount(a, acc)
	return nil
}

// pay moves amount from a to the rewards pool (territory payments).
func (l *Ledger) pay(a types.Address, amount uint64) error {
	if err := l.debit(a, amount); err != nil {
		return err
	}
	return l.credit(PoolAddress, amount)
}

func (l *Ledger) credit(a types.Address, amount uint64) error {
	s := state{l.o}
	acc := s.account(a)
	sum, carry := bits.Add64(acc.Balance, amount, 0)
	if carry != 0 {
		return errf(ErrInvalid, "balance overflow")
	}
	acc.Balance = sum
	s.putAccount(a, acc)
	return nil
}

// mul multiplies without overflowing: prices times sizes times days come
// from users.
func mul(a ...uint64) (uint64, error) {
	r := uint64(1)
	for _, x := range a {
		hi, lo := bits.Mul64(r, x)
		if hi != 0 {
			return 0, errf(ErrInvalid, "amount overflows")
		}
		r = lo
	}
	return r, nil
}
