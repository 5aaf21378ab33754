package ttlcache

import (
	"testing"
	"time"
)

func TestCache(t *testing.T) {
	now := time.Unix(1000, 0)
	c := New[string, int](10*time.Second, 3).WithClock(func() time.Time { return now })
	c.Put("a", 1)
	if v, ok := c.Get("a"); !ok || v != 1 {
		t.Fatalf("fresh: %v %v", v, ok)
	}
	now = now.Add(10 * time.Second)
	if _, ok := c.Get("a"); ok {
		t.Fatal("expired entry returned")
	}
	c.Put("b", 2)
	c.Put("c", 3)
	c.Put("d", 4) // "a" is expired: it goes, the rest stay
	if _, ok := c.Get("b"); !ok {
		t.Fatal("a fresh entry went while an expired one could")
	}
	c.Put("e", 5) // full of fresh ones: all go
	if _, ok := c.Get("b"); ok || len(c.m) != 1 {
		t.Fatalf("bound not kept: %d entries", len(c.m))
	}
	c.Delete("e")
	if _, ok := c.Get("e"); ok {
		t.Fatal("deleted entry returned")
	}
}
