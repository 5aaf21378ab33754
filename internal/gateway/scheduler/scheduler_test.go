package scheduler

import (
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/deoss/deoss/internal/types"
)

type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func addr(i int) types.Address { return types.Address{byte(i), 0xaa} }

func nodes(n int) []Node {
	out := make([]Node, n)
	for i := range out {
		out[i] = Node{Address: addr(i), Free: 1 << 30, Active: true}
	}
	return out
}

func TestPickEligibility(t *testing.T) {
	c := &clock{time.Unix(1e6, 0)}
	s := New(Config{Excluded: []types.Address{addr(1)}}, c.now)
	ns := nodes(16)
	ns[2].Active = false
	ns[3].Free = 10
	for range 3 {
		s.Failure(addr(4)) // cooling down
	}
	avoid := map[types.Address]bool{addr(5): true}
	for range 200 {
		got, err := s.Pick(ns, 100, 11, avoid)
		if err != nil {
			t.Fatal(err)
		}
		seen := map[types.Address]bool{}
		for _, a := range got {
			if seen[a] {
				t.Fatal("a node chosen twice")
			}
			seen[a] = true
			for _, bad := range []int{1, 2, 3, 4, 5} {
				if a == addr(bad) {
					t.Fatalf("node %d chosen", bad)
				}
			}
		}
	}
	// 16 - 5 ineligible = 11: twelve is too many, with a clear error.
	_, err := s.Pick(ns, 100, 12, avoid)
	var se *ShortError
	if !errors.As(err, &se) || !errors.Is(err, ErrNotEnoughNodes) || se.Have != 11 || se.Need != 12 {
		t.Fatalf("short: %v", err)
	}
	// A fixed set: only those.
	fixed := New(Config{Fixed: []types.Address{addr(7), addr(8)}}, c.now)
	got, err := fixed.Pick(ns, 100, 2, nil)
	if err != nil || !(got[0] == addr(7) || got[0] == addr(8)) || got[0] == got[1] {
		t.Fatalf("fixed: %v %v", got, err)
	}
	if _, err := fixed.Pick(ns, 100, 3, nil); !errors.Is(err, ErrNotEnoughNodes) {
		t.Fatal("fixed set exceeded")
	}
}

func TestPreferGoodSpreadLoad(t *testing.T) {
	c := &clock{time.Unix(1e6, 0)}
	s := New(Config{Failures: 1000, Preferred: []types.Address{addr(13)}}, c.now)
	s.Seed(1, 2)
	ns := nodes(14)
	// Node 0 fails half its pushes; the rest always succeed.
	for range 20 {
		s.Success(addr(0), 1, time.Second)
		s.Failure(addr(0))
		for i := 1; i < 14; i++ {
			s.Success(addr(i), 1, time.Second)
		}
	}
	counts := map[types.Address]int{}
	for range 4000 {
		got, _ := s.Pick(ns, 1, 1, nil)
		counts[got[0]]++
	}
	bad, pref := counts[addr(0)], counts[addr(13)]
	for i := 1; i < 13; i++ {
		c := counts[addr(i)]
		// Load spreads: every good node gets a fair share...
		if c < 100 {
			t.Fatalf("node %d picked %d times of 4000", i, c)
		}
		// ...and each is preferred over the failing one.
		if c <= bad {
			t.Fatalf("good node %d (%d) not preferred over the failing one (%d)", i, c, bad)
		}
	}
	if pref < 2*counts[addr(1)] {
		t.Fatalf("preferred node picked %d times, a plain one %d", pref, counts[addr(1)])
	}
}

func TestThroughputCounts(t *testing.T) {
	c := &clock{time.Unix(1e6, 0)}
	s := New(Config{}, c.now)
	s.Seed(3, 4)
	ns := nodes(3)
	for range 5 {
		s.Success(addr(0), 100<<20, time.Second) // fast
		s.Success(addr(1), 1<<20, time.Second)   // slow
		s.Success(addr(2), 10<<20, time.Second)
	}
	counts := map[types.Address]int{}
	for range 3000 {
		got, _ := s.Pick(ns, 1, 1, nil)
		counts[got[0]]++
	}
	if counts[addr(0)] <= counts[addr(1)] {
		t.Fatalf("fast %d, slow %d", counts[addr(0)], counts[addr(1)])
	}
}

func TestCooldown(t *testing.T) {
	c := &clock{time.Unix(1e6, 0)}
	s := New(Config{Failures: 3, Window: types.Duration(time.Minute), Cooldown: types.Duration(10 * time.Minute)}, c.now)
	a := addr(1)
	ns := []Node{{Address: a, Free: 100, Active: true}}
	// Three failures spread wider than the window: no cooldown.
	for range 3 {
		if s.Failure(a) {
			t.Fatal("cooldown from spread failures")
		}
		c.t = c.t.Add(40 * time.Second)
	}
	// Three within it: cooldown for 10 minutes.
	c.t = c.t.Add(2 * time.Minute)
	s.Failure(a)
	s.Failure(a)
	if !s.Failure(a) {
		t.Fatal("no cooldown after 3 failures in the window")
	}
	if _, err := s.Pick(ns, 1, 1, nil); !errors.Is(err, ErrNotEnoughNodes) {
		t.Fatal("a cooling node was chosen")
	}
	if sc := s.Scores(); len(sc) != 1 || sc[0].CooldownUntil.IsZero() {
		t.Fatalf("scores: %+v", sc)
	}
	c.t = c.t.Add(10*time.Minute + time.Second)
	if _, err := s.Pick(ns, 1, 1, nil); err != nil {
		t.Fatal("not back after the cooldown")
	}
	// Back again soon: the period doubles.
	for range 3 {
		s.Failure(a)
	}
	c.t = c.t.Add(15 * time.Minute)
	if _, err := s.Pick(ns, 1, 1, nil); err == nil {
		t.Fatal("second cooldown did not double")
	}
	c.t = c.t.Add(6 * time.Minute)
	if _, err := s.Pick(ns, 1, 1, nil); err != nil {
		t.Fatal("not back after the doubled cooldown")
	}
}

func TestDecay(t *testing.T) {
	c := &clock{time.Unix(1e6, 0)}
	s := New(Config{Failures: 1000, HalfLife: types.Duration(time.Hour)}, c.now)
	for range 8 {
		s.Failure(addr(1))
	}
	before := s.Scores()[0].Failures
	c.t = c.t.Add(2 * time.Hour)
	after := s.Scores()[0].Failures
	if before != 8 || after < 1.9 || after > 2.1 {
		t.Fatalf("failures %v -> %v after two half-lives", before, after)
	}
}

func TestPersist(t *testing.T) {
	c := &clock{time.Unix(1e6, 0)}
	path := filepath.Join(t.TempDir(), "scheduler.json")
	s := New(Config{Failures: 2}, c.now)
	s.Success(addr(1), 1<<20, time.Second)
	s.Failure(addr(2))
	s.Failure(addr(2))
	if err := s.Save(path); err != nil {
		t.Fatal(err)
	}
	r := New(Config{Failures: 2}, c.now)
	if err := r.Load(path); err != nil {
		t.Fatal(err)
	}
	got := r.Scores()
	if len(got) != 2 || got[0].Successes != 1 || got[0].Throughput == 0 || got[1].CooldownUntil.IsZero() {
		t.Fatalf("after load: %+v", got)
	}
	if err := New(Config{}, nil).Load(filepath.Join(t.TempDir(), "none.json")); err != nil {
		t.Fatalf("missing file: %v", err)
	}
}
