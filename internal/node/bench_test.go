package node

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/deoss/deoss/internal/auth"
	"github.com/deoss/deoss/internal/codec"
	"github.com/deoss/deoss/internal/ledger"
	"github.com/deoss/deoss/internal/node/store"
	"github.com/deoss/deoss/internal/types"
)

// The node benchmarks store and read 8 MiB fragments through the HTTP API on
// loopback into a Disk store (fsync and all), beside the bare primitive in the
// same run: writing the same bytes to a file, fsync, rename, fsync of the
// folder (docs/performance.md).

const benchFrag = types.FragmentSize

// fragmentN makes fragment i in buf (its first 8 bytes are i) and returns its
// hash.
func fragmentN(buf []byte, i int) types.Hash {
	binary.BigEndian.PutUint64(buf, uint64(i))
	return sha256.Sum256(buf)
}

// fragmentHash is fragment i's hash in format v.
func fragmentHash(buf []byte, i int, v uint8) types.Hash {
	h := fragmentN(buf, i)
	if v == types.FormatV2 {
		h = codec.Sum(v, buf)
	}
	return h
}

// benchSelf is the benchmarked node's key.
var benchSelf, _ = auth.FromSeed(bytes.Repeat([]byte{0xbe}, 32))

func benchServerVersion(b *testing.B, segments int, v uint8) (*httptest.Server, *auth.Key, types.FID, store.Store) {
	self := benchSelf
	gw, _ := auth.Generate()
	st, err := store.OpenDisk(b.TempDir(), 1<<40, benchFrag)
	if err != nil {
		b.Fatal(err)
	}
	fid := types.FID{0xbe}
	f := &ledger.File{FID: fid, State: ledger.FilePending,
		Layout: types.Layout{Version: v, Size: uint64(segments) * types.SegmentSize, Segments: make([]types.SegmentLayout, segments)}}
	if v == types.FormatV2 {
		f.Layout.Owner = types.Address{1}
	}
	f.Columns[3].Node = self.Address()
	buf := bytes.Repeat([]byte{7}, benchFrag)
	for i := range segments {
		f.Layout.Segments[i].Fragments[3] = fragmentHash(buf, i, v)
	}
	ch := &fakeChain{files: map[types.FID]*ledger.File{fid: f}, gateways: map[types.Address]bool{gw.Address(): true}}
	s := NewServer(ServerConfig{Self: self.Address(), FragmentSize: benchFrag}, st, ch, slog.New(slog.NewTextHandler(io.Discard, nil)))
	srv := httptest.NewServer(s.Handler())
	b.Cleanup(func() { srv.Close(); st.Close() })
	return srv, gw, fid, st
}

// storedFragments is a node holding n fragments of format v, and their
// hashes.
func storedFragments(b *testing.B, n int, v uint8) (*httptest.Server, []types.Hash) {
	srv, gw, fid, _ := benchServerVersion(b, n, v)
	buf := bytes.Repeat([]byte{7}, benchFrag)
	hashes := make([]types.Hash, n)
	for i := range n {
		hashes[i] = fragmentHash(buf, i, v)
		req, _ := http.NewRequest("PUT", fmt.Sprintf("%s/fragment/%s/3/%d", srv.URL, fid, i), bytes.NewReader(buf))
		auth.SignRequest(req, gw, benchSelf.Address(), time.Minute)
		resp, err := http.DefaultClient.Do(req)
		if err != nil || resp.StatusCode != http.StatusCreated {
			b.Fatal(err, resp.StatusCode)
		}
		resp.Body.Close()
	}
	return srv, hashes
}

func BenchmarkStore_8MiB(b *testing.B) { benchStore(b, types.FormatV1) }

// BenchmarkStoreV2_8MiB stores v2 fragments: BLAKE3 and the outboard built
// in the same pass, and the outboard made durable beside the fragment.
func BenchmarkStoreV2_8MiB(b *testing.B) { benchStore(b, types.FormatV2) }

func benchStore(b *testing.B, v uint8) {
	// The layout is made before timing: the hashes are the gateway's work.
	n := b.N
	srv, gw, fid, _ := benchServerVersion(b, n, v)
	buf := bytes.Repeat([]byte{7}, benchFrag)
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4}}
	b.SetBytes(benchFrag)
	b.ResetTimer()
	for i := range n {
		fragmentN(buf, i)
		req, _ := http.NewRequest("PUT", fmt.Sprintf("%s/fragment/%s/3/%d", srv.URL, fid, i), bytes.NewReader(buf))
		auth.SignRequest(req, gw, benchSelf.Address(), time.Minute)
		resp, err := client.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusCreated {
			b.Fatalf("status %d", resp.StatusCode)
		}
	}
}

func BenchmarkPrimitiveWriteFsync_8MiB(b *testing.B) {
	dir := b.TempDir()
	buf := bytes.Repeat([]byte{7}, benchFrag)
	b.SetBytes(benchFrag)
	for i := 0; b.Loop(); i++ {
		binary.BigEndian.PutUint64(buf, uint64(i))
		tmp := filepath.Join(dir, "tmp")
		f, err := os.Create(tmp)
		if err != nil {
			b.Fatal(err)
		}
		f.Write(buf)
		f.Sync()
		f.Close()
		os.Rename(tmp, filepath.Join(dir, fmt.Sprint(i)))
		d, _ := os.Open(dir)
		d.Sync()
		d.Close()
	}
}

func BenchmarkRead_8MiB(b *testing.B) {
	const stored = 8
	srv, hashes := storedFragments(b, stored, types.FormatV1)
	out := make([]byte, benchFrag)
	b.SetBytes(benchFrag)
	for i := 0; b.Loop(); i++ {
		resp, err := http.Get(srv.URL + "/fragment/" + hashes[i%stored].String())
		if err != nil {
			b.Fatal(err)
		}
		if _, err := io.ReadFull(resp.Body, out); err != nil {
			b.Fatal(err)
		}
		resp.Body.Close()
	}
}

// BenchmarkSlice_8MiB and _1MiB read v2 fragments as verified slices: the
// node's side (outboard, extraction) and the client's verification.
func BenchmarkSlice_8MiB(b *testing.B) { benchSlice(b, benchFrag) }
func BenchmarkSlice_1MiB(b *testing.B) { benchSlice(b, 1<<20) }

func benchSlice(b *testing.B, n int64) {
	const stored = 8
	srv, hashes := storedFragments(b, stored, types.FormatV2)
	out := make([]byte, n)
	b.SetBytes(n)
	for i := 0; b.Loop(); i++ {
		off := int64(i*12345) % (benchFrag - n + 1)
		resp, err := http.Get(fmt.Sprintf("%s/fragment/%s/slice?offset=%d&length=%d", srv.URL, hashes[i%stored], off, n))
		if err != nil {
			b.Fatal(err)
		}
		if err := codec.VerifySlice(resp.Body, out, benchFrag, off, hashes[i%stored]); err != nil {
			b.Fatal(err)
		}
		resp.Body.Close()
	}
}

func BenchmarkPrimitiveRead_8MiB(b *testing.B) {
	dir := b.TempDir()
	buf := bytes.Repeat([]byte{7}, benchFrag)
	for i := range 8 {
		os.WriteFile(filepath.Join(dir, fmt.Sprint(i)), buf, 0o600)
	}
	out := make([]byte, benchFrag)
	b.SetBytes(benchFrag)
	for i := 0; b.Loop(); i++ {
		f, err := os.Open(filepath.Join(dir, fmt.Sprint(i%8)))
		if err != nil {
			b.Fatal(err)
		}
		io.ReadFull(f, out)
		f.Close()
	}
}

// BenchmarkPrimitiveHTTPRead_8MiB: a bare net/http handler serving 8 MiB from
// memory over loopback: what the transport alone costs.
func BenchmarkPrimitiveHTTPRead_8MiB(b *testing.B) {
	buf := bytes.Repeat([]byte{7}, benchFrag)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.Write(buf) }))
	defer srv.Close()
	out := make([]byte, benchFrag)
	b.SetBytes(benchFrag)
	for b.Loop() {
		resp, err := http.Get(srv.URL)
		if err != nil {
			b.Fatal(err)
		}
		io.ReadFull(resp.Body, out)
		resp.Body.Close()
	}
}
