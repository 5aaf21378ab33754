package ingest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/deoss/deoss/internal/gateway/pipeline"
	"github.com/deoss/deoss/internal/types"
)

// Space a gateway holds for files on their way in is counted against their
// territory's free space and their account's pending cap until the chain
// counts it (the file is declared) or it goes: open upload sessions (durable,
// asked of SessionBytes), streamed bodies being received (Hold), and
// accepted files not yet declared (the queue). Without this, a user could
// open any number of sessions each as large as the territory, and fill the
// gateway's disk.

// ErrPendingCap refuses a file that would take an account's pending bytes at
// this gateway past the cap.
var ErrPendingCap = errors.New("too much held at this gateway for one account")

// ErrPastSpace cuts a streamed body as soon as it passes what its territory
// (or the account's pending cap) can still take.
var ErrPastSpace = errors.New("the body is larger than the territory can take")

// Held is what a file on its way in holds of the pending count already (its
// session, its stream's Hold).
type Held interface{ Bytes() uint64 }

// SessionBytes reports the padded bytes of the open upload sessions of an
// account: by territory, and in all.
type SessionBytes func(owner types.Address) (byTerritory map[string]uint64, all uint64)

type holdKey struct {
	owner     types.Address
	territory string
}

// holds are the streamed bodies being received, in memory (a restart ends
// them anyway).
type holds struct {
	mu sync.Mutex
	m  map[holdKey]uint64
}

// Hold is the space one streamed body holds; Release gives it back.
type Hold struct {
	in   *Ingest
	key  holdKey
	n    uint64
	once sync.Once
}

func (h *Hold) add(n uint64) {
	h.in.holds.mu.Lock()
	h.n += n
	h.in.holds.m[h.key] += n
	h.in.holds.mu.Unlock()
}

// Release gives the space back (more than once is once).
func (h *Hold) Release() {
	if h == nil {
		return
	}
	h.once.Do(func() {
		h.in.holds.mu.Lock()
		if h.in.holds.m[h.key] -= h.n; h.in.holds.m[h.key] == 0 {
			delete(h.in.holds.m, h.key)
		}
		h.in.holds.mu.Unlock()
	})
}

// Bytes is what the hold holds.
func (h *Hold) Bytes() uint64 {
	if h == nil {
		return 0
	}
	h.in.holds.mu.Lock()
	defer h.in.holds.mu.Unlock()
	return h.n
}

// pending is what this gateway holds for owner's territory, and for owner
// in all, beyond what the chain counts.
func (in *Ingest) pending(owner types.Address, territory string) (uint64, uint64, error) {
	var inT, all uint64
	if in.sessionBytes != nil {
		byT, a := in.sessionBytes(owner)
		inT, all = byT[territory], a
	}
	in.holds.mu.Lock()
	for k, n := range in.holds.m {
		if k.owner == owner {
			all += n
			if k.territory == territory {
				inT += n
			}
		}
	}
	in.holds.mu.Unlock()
	recs, err := in.queue.Pending()
	if err != nil {
		return 0, 0, err
	}
	for _, r := range recs {
		if r.Owner == owner && r.State == pipeline.Processed {
			n := types.ProfileV2.PaddedSize(r.Size, types.EncryptionAES256GCM)
			all += n
			if r.Territory == territory {
				inT += n
			}
		}
	}
	return inT, all, nil
}

// room is how many padded bytes the territory and the account can still
// take at this gateway, own (bytes of the file being checked that are
// counted as pending already) given back.
func (in *Ingest) room(ctx context.Context, user types.Address, territory string, own uint64) (uint64, error) {
	t, err := in.territory(ctx, user, territory)
	if err != nil {
		return 0, err
	}
	inT, all, err := in.pending(user, territory)
	if err != nil {
		return 0, err
	}
	inT, all = inT-min(inT, own), all-min(all, own)
	free := t.Free() - min(t.Free(), inT)
	capLeft := in.maxPending - min(in.maxPending, all)
	return min(free, capLeft), nil
}

// spaceError says which bound a file of need bytes passes, by the chain's
// territory as it is now.
func (in *Ingest) spaceError(ctx context.Context, user types.Address, territory string, need, own uint64) error {
	t, err := in.freshTerritory(ctx, user, territory)
	if err != nil {
		return err
	}
	inT, all, err := in.pending(user, territory)
	if err != nil {
		return err
	}
	inT, all = inT-min(inT, own), all-min(all, own)
	switch {
	case all+need > in.maxPending:
		return fmt.Errorf("%w: %d bytes of uploads in progress or not yet declared, %d more asked, at most %d", ErrPendingCap, all, need, in.maxPending)
	case t.Free() < inT+need:
		return fmt.Errorf("%w: territory %q has %d bytes free, %d of them held by uploads in progress here; the file takes %d",
			ErrInsufficientSpace, territory, t.Free(), inT, need)
	}
	return nil
}

// HoldStream holds space for a streamed body of size bytes (-1: unknown,
// then the hold grows as bytes come) and returns body cut off with
// ErrPastSpace as soon as it passes what the territory and the account can
// take. Release the hold once the file is accepted or refused.
func (in *Ingest) HoldStream(ctx context.Context, user types.Address, territory string, size int64, enc types.Encryption, body io.Reader) (io.Reader, *Hold, error) {
	room, err := in.room(ctx, user, territory, 0)
	if err != nil {
		return nil, nil, err
	}
	h := &Hold{in: in, key: holdKey{user, territory}}
	if size >= 0 {
		need := types.ProfileV2.PaddedSize(uint64(size), enc)
		if need > room {
			// The cached territory says no: the chain's word now decides.
			if err := in.spaceError(ctx, user, territory, need, 0); err != nil {
				return nil, nil, err
			}
		}
		h.add(need)
		return body, h, nil
	}
	return &pastSpace{r: body, h: h, room: room, enc: enc}, h, nil
}

// pastSpace holds what it reads and fails past room.
type pastSpace struct {
	r    io.Reader
	h    *Hold
	room uint64
	enc  types.Encryption
	read uint64
}

func (p *pastSpace) Read(b []byte) (int, error) {
	n, err := p.r.Read(b)
	p.read += uint64(n)
	need := types.ProfileV2.PaddedSize(p.read, p.enc)
	if need > p.room {
		return 0, fmt.Errorf("%w: past %d bytes", ErrPastSpace, p.room)
	}
	if grow := need - min(need, p.h.Bytes()); grow > 0 {
		p.h.add(grow)
	}
	return n, err
}
