package ledger

import (
	"strconv"

	"github.com/deoss/deoss/internal/types"
)

const (
	gib    = 1 << 30
	day    = 86400
	maxGiB = 1 << 30 // an exbibyte: far above any real purchase, far below overflow
	maxDay = 100 * 365
)

// Territory rules. A territory takes new files while active (block time before
// Expires). When it expires, the files already in it stay stored and readable:
// the owner renews to add files again. Removing the files of territories that
// stay expired is left to a later version (a grace period, then deletion), and
// is documented in docs/ledger.md.

func (l *Ledger) buyTerritory(owner types.Address, m *BuyTerritory) error {
	if err := ValidName(m.Name); err != nil {
		return err
	}
	if m.GiB == 0 || m.GiB > maxGiB || m.Days == 0 || m.Days > maxDay {
		return errf(ErrInvalid, "buy 1 to %d GiB for 1 to %d days", maxGiB, maxDay)
	}
	s := state{l.o}
	key := territoryKey(owner, m.Name)
	if s.flag(key) {
		return errf(ErrConflict, "territory %q exists", m.Name)
	}
	cost, err := mul(m.GiB, m.Days, s.params().PricePerGiBDay)
	if err != nil {
		return err
	}
	if err := l.pay(owner, cost); err != nil {
		return err
	}
	t := Territory{Owner: owner, Name: m.Name, Total: m.GiB * gib, Expires: l.now + int64(m.Days)*day}
	s.put(key, &t)
	l.emitTerritory("bought", &t, cost)
	return nil
}

func (l *Ledger) territory(owner types.Address, name string) (*Territory, error) {
	t, ok := load[Territory](state{l.o}, territoryKey(owner, name))
	if !ok {
		return nil, errf(ErrNotFound, "territory %q of %s", name, owner)
	}
	return t, nil
}

func (l *Ledger) expandTerritory(owner types.Address, m *ExpandTerritory) error {
	t, err := l.territory(owner, m.Name)
	if err != nil {
		return err
	}
	if !t.Active(l.now) {
		return errf(ErrExpired, "territory %q expired; renew it first", m.Name)
	}
	if m.GiB == 0 || m.GiB > maxGiB || t.Total/gib+m.GiB > maxGiB {
		return errf(ErrInvalid, "expand by 1 to %d GiB in all", maxGiB)
	}
	daysLeft := uint64((t.Expires - l.now + day - 1) / day) // started days count whole
	cost, err := mul(m.GiB, daysLeft, state{l.o}.params().PricePerGiBDay)
	if err != nil {
		return err
	}
	if err := l.pay(owner, cost); err != nil {
		return err
	}
	t.Total += m.GiB * gib
	state{l.o}.put(territoryKey(owner, m.Name), t)
	l.emitTerritory("expanded", t, cost)
	return nil
}

func (l *Ledger) renewTerritory(owner types.Address, m *RenewTerritory) error {
	t, err := l.territory(owner, m.Name)
	if err != nil {
		return err
	}
	if m.Days == 0 || m.Days > maxDay {
		return errf(ErrInvalid, "renew for 1 to %d days", maxDay)
	}
	cost, err := mul(t.Total/gib, m.Days, state{l.o}.params().PricePerGiBDay)
	if err != nil {
		return err
	}
	if err := l.pay(owner, cost); err != nil {
		return err
	}
	t.Expires = max(t.Expires, l.now) + int64(m.Days)*day
	state{l.o}.put(territoryKey(owner, m.Name), t)
	l.emitTerritory("renewed", t, cost)
	return nil
}

func (l *Ledger) emitTerritory(action string, t *Territory, cost uint64) {
	l.emit(EventTerritory, AttrAction, action, AttrOwner, t.Owner.String(), AttrName, t.Name,
		"total_bytes", strconv.FormatUint(t.Total, 10), "expires", strconv.FormatInt(t.Expires, 10),
		"cost", strconv.FormatUint(cost, 10))
}
