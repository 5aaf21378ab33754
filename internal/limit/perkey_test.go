package limit

import (
	"testing"
	"time"
)

func TestPerKey(t *testing.T) {
	p := NewPerKey(2)
	r1, ok1 := p.TryAcquire("a")
	_, ok2 := p.TryAcquire("a")
	if !ok1 || !ok2 {
		t.Fatal("a's two places")
	}
	if _, ok := p.TryAcquire("a"); ok {
		t.Fatal("a third holder of a")
	}
	if _, ok := p.TryAcquire("b"); !ok {
		t.Fatal("b is not held back by a")
	}
	r1()
	r1() // a second release gives back nothing more
	if _, ok := p.TryAcquire("a"); !ok {
		t.Fatal("a after a release")
	}
	if _, ok := p.TryAcquire("a"); ok {
		t.Fatal("a double release made room")
	}
}

func TestPenalty(t *testing.T) {
	now := time.Unix(1000, 0)
	p := &Penalty{Base: time.Second, Max: 8 * time.Second, Free: 2, Now: func() time.Time { return now }}
	if p.Wait("f") != 0 {
		t.Fatal("refused before any failure")
	}
	for range 2 {
		if d := p.Fail("f"); d != 0 || p.Wait("f") != 0 {
			t.Fatalf("a free failure cost %v", d)
		}
	}
	for i, want := range []time.Duration{1, 2, 4, 8, 8} {
		if d := p.Fail("f"); d != want*time.Second {
			t.Fatalf("failure %d: %v, want %v", i+1, d, want*time.Second)
		}
	}
	if p.Wait("f") != 8*time.Second || p.Wait("g") != 0 {
		t.Fatal("waits")
	}
	now = now.Add(9 * time.Second)
	if p.Wait("f") != 0 {
		t.Fatal("still refused after the back-off")
	}
	p.Succeed("f")
	p.Fail("f")
	p.Fail("f")
	if d := p.Fail("f"); d != time.Second {
		t.Fatalf("after a success: %v", d)
	}
}
