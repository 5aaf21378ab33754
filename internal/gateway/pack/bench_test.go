package pack

import (
	"bytes"
	"encoding/binary"
	"log/slog"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"
)

// BenchmarkAppend1KiB: 1 KiB appends from 32 writers at once, each durable
// when it returns. Compare with BenchmarkRawFsyncAppend1KiB, the primitive:
// one write and one fsync per object, as an unpacked put needs at least.
func BenchmarkAppend1KiB(b *testing.B) {
	buf, err := Open(b.TempDir(), time.Now, slog.New(slog.DiscardHandler))
	if err != nil {
		b.Fatal(err)
	}
	defer buf.Close()
	b.SetParallelism(16) // 2 cores: 32 writers
	b.SetBytes(1024)
	var n atomic.Uint64
	b.RunParallel(func(pb *testing.PB) {
		data := make([]byte, 1024)
		for pb.Next() {
			binary.BigEndian.PutUint64(data, n.Add(1)) // distinct objects
			if _, err := buf.Append(Object{Owner: owner, Name: "o", Territory: "t", Length: 1024}, bytes.NewReader(data)); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

func BenchmarkRawFsyncAppend1KiB(b *testing.B) {
	f, err := os.Create(filepath.Join(b.TempDir(), "raw"))
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	data := make([]byte, 1024)
	b.SetBytes(1024)
	for b.Loop() {
		if _, err := f.Write(data); err != nil {
			b.Fatal(err)
		}
		if err := f.Sync(); err != nil {
			b.Fatal(err)
		}
	}
}
