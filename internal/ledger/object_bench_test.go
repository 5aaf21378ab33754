package ledger

import (
	"bytes"
	"fmt"
	"sort"
	"testing"

	"github.com/deoss/deoss/internal/types"
)

// sortedKV is a SeekKV over sorted keys, iterated from a binary search:
// what the chain's bbolt store does with its cursor (MemKV sorts per call).
type sortedKV struct {
	keys [][]byte
	vals [][]byte
}

func (s *sortedKV) Get(key []byte) []byte {
	i := sort.Search(len(s.keys), func(i int) bool { return bytes.Compare(s.keys[i], key) >= 0 })
	if i < len(s.keys) && bytes.Equal(s.keys[i], key) {
		return s.vals[i]
	}
	return nil
}

func (s *sortedKV) Iterate(prefix []byte, fn func(key, value []byte) bool) {
	s.IterateFrom(prefix, prefix, fn)
}

func (s *sortedKV) IterateFrom(prefix, from []byte, fn func(key, value []byte) bool) {
	if bytes.Compare(from, prefix) < 0 {
		from = prefix
	}
	i := sort.Search(len(s.keys), func(i int) bool { return bytes.Compare(s.keys[i], from) >= 0 })
	for ; i < len(s.keys) && bytes.HasPrefix(s.keys[i], prefix); i++ {
		if !fn(s.keys[i], s.vals[i]) {
			return
		}
	}
}

// BenchmarkListObjects100k pages through a bucket of 100,000 keys, 1,000
// a page as S3 clients ask, beside the primitive: one walk of the same
// keys in the store.
func BenchmarkListObjects100k(b *testing.B) {
	const n = 100_000
	var owner types.Address
	owner[0] = 1
	kv := &sortedKV{}
	var fid types.FID
	for i := range n {
		key := fmt.Sprintf("backup/%03d/%06d", i%100, i)
		kv.keys = append(kv.keys, []byte(objectKey(owner, "bkt", key)))
		kv.vals = append(kv.vals, marshal(&Object{Key: key, FID: fid, Size: 1000, ETag: "0123456789abcdef0123456789abcdef", Modified: 1}))
	}
	idx := make([]int, n)
	for i := range idx {
		idx[i] = i
	}
	sort.Slice(idx, func(a, c int) bool { return bytes.Compare(kv.keys[idx[a]], kv.keys[idx[c]]) < 0 })
	sorted := &sortedKV{}
	for _, i := range idx {
		sorted.keys, sorted.vals = append(sorted.keys, kv.keys[i]), append(sorted.vals, kv.vals[i])
	}
	s := state{newOverlay(sorted)}
	b.Run("primitive", func(b *testing.B) {
		for range b.N {
			got := 0
			s.o.iterate(objectKey(owner, "bkt", ""), func(_ string, v []byte) bool {
				var o Object
				mustUnmarshal(v, &o)
				got++
				return true
			})
			if got != n {
				b.Fatal(got)
			}
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/key")
	})
	b.Run("pages", func(b *testing.B) {
		for range b.N {
			got, start := 0, ""
			for {
				l := listObjects(s, owner, "bkt", "", "", start, 1000)
				got += len(l.Objects)
				if !l.Truncated {
					break
				}
				start = l.Next
			}
			if got != n {
				b.Fatal(got)
			}
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/key")
	})
	b.Run("delimited", func(b *testing.B) {
		for range b.N {
			l := listObjects(s, owner, "bkt", "backup/", "/", "", 1000)
			if len(l.Prefixes) != 100 {
				b.Fatal(len(l.Prefixes))
			}
		}
	})
}
