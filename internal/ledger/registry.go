package ledger

import (
	"net/netip"
	"net/url"
	"strconv"
	"strings"

	"github.com/deoss/deoss/internal/types"
)

// validEndpoint accepts a base URL that gateways call with paths appended:
// http or https, a host, nothing else (no user info, path, query or
// fragment: a query would swallow the path a caller appends). Off dev
// chains, an IP literal must be public: gateways call every registered
// endpoint, and a loopback, private or link-local address would aim them at
// their own networks (SSRF). (A name is not resolved here: the chain cannot
// know what it resolves to.)
func (l *Ledger) validEndpoint(s string) error {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || len(s) > 512 {
		return errf(ErrInvalid, "endpoint %q is not an http(s) URL", s)
	}
	if u.User != nil || u.Path != "" || u.RawQuery != "" || u.ForceQuery || u.Fragment != "" || u.Opaque != "" {
		return errf(ErrInvalid, "endpoint %q: a base URL only (scheme://host[:port]), no user, path, query or fragment", s)
	}
	if ip, err := netip.ParseAddr(strings.Trim(u.Hostname(), "[]")); err == nil && !(state{l.o}).chain().Dev {
		if !ip.IsGlobalUnicast() || ip.IsPrivate() || ip.IsLoopback() || ip.IsLinkLocalUnicast() {
			return errf(ErrInvalid, "endpoint %q: %s is not a public address", s, ip)
		}
	}
	return nil
}

func (l *Ledger) registerGateway(a types.Address, m *RegisterGateway) error {
	if err := l.validEndpoint(m.Endpoint); err != nil {
		return err
	}
	s := state{l.o}
	if s.flag(addrKey(pGateway, a)) {
		return errf(ErrConflict, "gateway %s is registered", a)
	}
	deposit := s.params().GatewayDeposit
	if err := l.debit(a, deposit); err != nil {
		return errf(ErrInsufficientFunds, "a gateway locks a deposit of %d: %v", deposit, err)
	}
	s.put(addrKey(pGateway, a), &Gateway{Address: a, Endpoint: m.Endpoint, CacheOnly: m.CacheOnly, Deposit: deposit})
	l.emit(EventGateway, AttrAction, "registered", AttrGateway, a.String(), AttrEndpoint, m.Endpoint)
	return nil
}

// Gateway returns a registered gateway.
func (l *Ledger) gateway(a types.Address) (*Gateway, error) {
	g, ok := load[Gateway](state{l.o}, addrKey(pGateway, a))
	if !ok {
		return nil, errf(ErrNotFound, "gateway %s is not registered", a)
	}
	return g, nil
}

func (l *Ledger) updateGateway(a types.Address, m *UpdateGateway) error {
	g, err := l.gateway(a)
	if err != nil {
		return err
	}
	if err := l.validEndpoint(m.Endpoint); err != nil {
		return err
	}
	g.Endpoint = m.Endpoint
	state{l.o}.put(addrKey(pGateway, a), g)
	l.emit(EventGateway, AttrAction, "updated", AttrGateway, a.String(), AttrEndpoint, m.Endpoint)
	return nil
}

// Unregistering keeps users' authorizations (they name an address, and the
// gateway may come back); pending orders it declared expire as usual.
func (l *Ledger) unregisterGateway(a types.Address) error {
	g, err := l.gateway(a)
	if err != nil {
		return err
	}
	state{l.o}.o.del(addrKey(pGateway, a))
	_ = l.credit(a, g.Deposit) // cannot overflow: it came from this balance
	l.emit(EventGateway, AttrAction, "unregistered", AttrGateway, a.String())
	return nil
}

func (l *Ledger) authorize(user types.Address, m *Authorize) error {
	if _, err := l.gateway(m.Gateway); err != nil {
		return err
	}
	s := state{l.o}
	if s.flag(authzKey(user, m.Gateway)) {
		return errf(ErrConflict, "gateway %s is already authorized", m.Gateway)
	}
	s.setFlag(authzKey(user, m.Gateway))
	l.emit(EventAuthorization, AttrAction, "authorized", AttrUser, user.String(), AttrGateway, m.Gateway.String())
	return nil
}

func (l *Ledger) revoke(user types.Address, m *Revoke) error {
	s := state{l.o}
	if !s.flag(authzKey(user, m.Gateway)) {
		return errf(ErrNotFound, "gateway %s is not authorized", m.Gateway)
	}
	s.o.del(authzKey(user, m.Gateway))
	l.emit(EventAuthorization, AttrAction, "revoked", AttrUser, user.String(), AttrGateway, m.Gateway.String())
	return nil
}

func (l *Ledger) registerNode(a types.Address, m *RegisterNode) error {
	if err := l.validEndpoint(m.Endpoint); err != nil {
		return err
	}
	s := state{l.o}
	if s.flag(addrKey(pNode, a)) {
		return errf(ErrConflict, "node %s is registered", a)
	}
	if m.Capacity < types.FragmentSize {
		return errf(ErrInvalid, "capacity %d is less than one fragment", m.Capacity)
	}
	if min := s.params().MinNodeStake; m.Stake < min {
		return errf(ErrInvalid, "stake %d is below the minimum %d", m.Stake, min)
	}
	if err := l.debit(a, m.Stake); err != nil {
		return err
	}
	s.put(addrKey(pNode, a), &Node{Address: a, Endpoint: m.Endpoint, Capacity: m.Capacity, Stake: m.Stake, State: NodeActive})
	l.schedule(a)
	l.emit(EventNode, AttrAction, "registered", AttrNode, a.String(), AttrEndpoint, m.Endpoint,
		"capacity", strconv.FormatUint(m.Capacity, 10))
	return nil
}

func (l *Ledger) node(a types.Address) (*Node, error) {
	n, ok := load[Node](state{l.o}, addrKey(pNode, a))
	if !ok {
		return nil, errf(ErrNotFound, "node %s is not registered", a)
	}
	return n, nil
}

func (l *Ledger) updateNode(a types.Address, m *UpdateNode) error {
	n, err := l.node(a)
	if err != nil {
		return err
	}
	if err := l.validEndpoint(m.Endpoint); err != nil {
		return err
	}
	// Capacity may shrink below what is assigned: the node then takes no
	// new columns until it has room again.
	n.Endpoint, n.Capacity = m.Endpoint, m.Capacity
	state{l.o}.put(addrKey(pNode, a), n)
	l.emit(EventNode, AttrAction, "updated", AttrNode, a.String(), AttrEndpoint, m.Endpoint,
		"capacity", strconv.FormatUint(m.Capacity, 10))
	return nil
}

func (l *Ledger) exitNode(a types.Address) error {
	n, err := l.node(a)
	if err != nil {
		return err
	}
	if n.State == NodeExiting {
		return errf(ErrConflict, "node %s is exiting already", a)
	}
	old := n.State
	n.State = NodeExiting
	l.nodeChanged(n, old) // its columns become restoral orders
	state{l.o}.put(addrKey(pNode, a), n)
	l.emit(EventNode, AttrAction, "exiting", AttrNode, a.String())
	l.maybeRemoveNode(n)
	return nil
}

// maybeRemoveNode removes an exiting node that holds nothing and returns its
// stake.
func (l *Ledger) maybeRemoveNode(n *Node) {
	if n.State != NodeExiting || n.Assigned != 0 {
		return
	}
	state{l.o}.o.del(addrKey(pNode, n.Address))
	_ = l.credit(n.Address, n.Stake) // cannot overflow: the stake came from this balance
	l.emit(EventNode, AttrAction, "exited", AttrNode, n.Address.String())
}
