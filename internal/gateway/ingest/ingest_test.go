package ingest

import (
	"bytes"
	"context"
	"sync"
	"testing"
	"time"

	"github.com/deoss/deoss/internal/types"
)

type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// TestReadKeysKeptAMinute: a read key is derived once per file and cipher
// and kept a minute (Argon2id once per client, not per range); another
// cipher or another salt is another key; after the minute it is derived
// again.
func TestReadKeysKeptAMinute(t *testing.T) {
	c := &clock{now: time.Unix(1_800_000_000, 0)}
	in := New(Config{Now: c.Now}, nil, nil, nil, nil)
	ctx := context.Background()
	salt := bytes.Repeat([]byte{3}, types.SaltSize)
	k1, err := in.Derive(ctx, []byte("open sesame"), salt)
	if err != nil {
		t.Fatal(err)
	}
	if k2, _ := in.Derive(ctx, []byte("open sesame"), salt); k2 != k1 {
		t.Fatal("the same cipher and salt derived again within the minute")
	}
	if k3, _ := in.Derive(ctx, []byte("open sesame!"), salt); k3 == k1 {
		t.Fatal("another cipher got the cached key")
	}
	if k4, _ := in.Derive(ctx, []byte("open sesame"), bytes.Repeat([]byte{4}, types.SaltSize)); k4 == k1 {
		t.Fatal("another salt got the cached key")
	}
	c.add(61 * time.Second)
	if k5, _ := in.Derive(ctx, []byte("open sesame"), salt); k5 == k1 {
		t.Fatal("the key outlived its minute")
	}
}
