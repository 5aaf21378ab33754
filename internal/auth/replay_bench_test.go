package auth

import (
	"encoding/binary"
	"encoding/hex"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/deoss/deoss/internal/types"
)

// BenchmarkReplayAdd: spending a nonce in memory, and kept on disk (a
// bbolt batch: concurrent spends share one fsync). Run with -cpu 1,8 to see
// the group commit; report the file's cost as a multiple of memory's.
func BenchmarkReplayAdd(b *testing.B) {
	var seq atomic.Uint64
	nonce := func() string {
		var n [16]byte
		binary.BigEndian.PutUint64(n[:], seq.Add(1))
		return hex.EncodeToString(n[:])
	}
	run := func(b *testing.B, c *ReplayCache) {
		now := time.Now()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if err := c.Add(types.Address{1}, "c", nonce(), now.Add(time.Minute), now); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	lim := ReplayLimits{Capacity: 1 << 30, PerAccount: 1 << 30, PerClient: 1 << 30}
	b.Run("memory", func(b *testing.B) { run(b, NewReplayCache(lim)) })
	b.Run("file", func(b *testing.B) {
		c, err := OpenReplayCache(filepath.Join(b.TempDir(), "replay.db"), lim, time.Now())
		if err != nil {
			b.Fatal(err)
		}
		defer c.Close()
		run(b, c)
	})
}
