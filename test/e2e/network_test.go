package e2e

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/deoss/deoss/internal/chain"
	"github.com/deoss/deoss/internal/ledger"
	"github.com/deoss/deoss/internal/testutil"
	"github.com/deoss/deoss/internal/types"
)

// TestCacheNode: a gateway run as a cache node takes no uploads, and once it
// has read a file, peers read that file from it when too few storage nodes
// are left to rebuild it.
func TestCacheNode(t *testing.T) {
	if testing.Short() {
		t.Skip("starts 16 processes")
	}
	n := Start(t, Options{Nodes: 12, Gateways: 3,
		CacheOnly: func(i int) bool { return i == 2 },
		Gateway: func(i int, cfg map[string]any) {
			cfg["cache_bytes"] = 1 // A and B keep nothing
			if i == 2 {
				cfg["cache_bytes"] = 1 << 30
			}
		}})
	a, b, cache := n.Gateways[0], n.Gateways[1], n.Gateways[2]
	if resp := n.Do(nil, "PUT", cache.URL+"/object/x?territory=home", bytes.NewReader([]byte("x")), 1, nil); resp.StatusCode/100 == 2 {
		t.Fatalf("the cache node took an upload: %d", resp.StatusCode)
	} else {
		resp.Body.Close()
	}
	data := randomBytes(31, types.SegmentSize+4321)
	fid := n.Put(0, "cached.bin", bytes.NewReader(data), int64(len(data)), nil)
	f := n.WaitStored(fid, 2*time.Minute)
	waitCleaned(t, a)
	st, _, body := get(t, cache.URL+"/file/download/"+fid.String(), nil)
	if st != 200 {
		t.Fatalf("read through the cache node: %d", st)
	}
	mustEqual(t, "cache node", body, data)
	// Nine of the twelve holders die: only the cache node has enough.
	for _, c := range f.Columns[:9] {
		n.NodeByAddress(c.Node).Kill()
	}
	st, _, body = get(t, b.URL+"/file/download/"+fid.String(), nil)
	if st != 200 {
		t.Fatalf("read through B with 9 holders dead: %d %s", st, body)
	}
	mustEqual(t, "via the cache node as a peer", body, data)
	if v := metric(t, b.URL, `deoss_gateway_fragments_read_total{source="peer"}`); v < 4 {
		t.Fatalf("B read %v fragments from peers", v)
	}
}

// TestValidatorLoss: four validators, with proofs of storage every 3 s;
// one is killed while files go in and out; uploads and downloads go on,
// and the validators agree on every block's state, challenges included.
func TestValidatorLoss(t *testing.T) {
	if testing.Short() {
		t.Skip("starts 17 processes")
	}
	n := Start(t, Options{Validators: 4, Nodes: 12, Proofs: func(p *ledger.Params) { p.EpochSeconds, p.ProofWindow = 3, 15 }})
	gw := n.Gateways[0]
	var wg sync.WaitGroup
	var done atomic.Int64
	stop := time.Now().Add(20 * time.Second)
	for w := range 2 {
		wg.Go(func() {
			for i := 0; time.Now().Before(stop); i++ {
				data := randomBytes(uint64(1000+w*100+i), 2<<20+i*1000)
				fid := n.Put(0, fmt.Sprintf("v%d-%d", w, i), bytes.NewReader(data), int64(len(data)), nil)
				st, _, body := get(t, gw.URL+"/file/download/"+fid.String(), nil)
				if st != 200 || !bytes.Equal(body, data) {
					t.Errorf("worker %d file %d: %d", w, i, st)
					return
				}
				n.WaitStored(fid, 2*time.Minute)
				done.Add(1)
			}
		})
	}
	// The validator dies in the middle of the traffic: once a file is
	// stored, with the others under way.
	deadline := time.Now().Add(2 * time.Minute)
	for done.Load() == 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	n.Validators[3].Kill()
	wg.Wait()
	if done.Load() < 4 {
		t.Fatalf("only %d files stored around the validator's loss", done.Load())
	}
	t.Logf("%d files stored and read while one of four validators was down", done.Load())

	// The three left agree on the state of a block after challenges ran
	// (a validator whose challenges differed would have another app hash,
	// and CometBFT would stop it).
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var passed uint64
	if !testutil.Eventually(time.Minute, 100*time.Millisecond, func() bool {
		ns, err := n.Chain.Nodes(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, nd := range ns {
			passed += nd.Passed
		}
		return passed > 0
	}) {
		t.Fatal("no node proved anything")
	}
	h, err := n.Chain.Height(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var first []byte
	for i, rpc := range n.RPCs[:3] {
		c, err := chain.Dial(rpc)
		if err != nil {
			t.Fatal(err)
		}
		if !testutil.Eventually(time.Minute, 50*time.Millisecond, func() bool {
			hi, err := c.Height(ctx)
			return err == nil && hi > h
		}) {
			t.Fatalf("validator %d stays below %d", i, h+1)
		}
		a, err := c.AppHashAt(ctx, h)
		if err != nil {
			t.Fatalf("validator %d: %v", i, err)
		}
		if first == nil {
			first = a
		} else if !bytes.Equal(a, first) {
			t.Fatalf("validator %d's app hash at %d differs: %X, not %X", i, h, a, first)
		}
	}
	t.Logf("%d proofs passed; validators 0-2 agree at height %d", passed, h)
}

// TestLoad: clients upload and download files of mixed sizes for a fixed
// time; every byte is verified, no request fails, and the gateway's peak
// memory is reported. The short version: 6 clients, 15 s, up to 8 MiB.
// DEOSS_E2E_FULL=1: 32 clients, 2 minutes, up to 256 MiB.
func TestLoad(t *testing.T) {
	if testing.Short() {
		t.Skip("starts 14 processes")
	}
	clients, dur, maxSize := 6, 15*time.Second, int64(8<<20)
	if os.Getenv("DEOSS_E2E_FULL") != "" {
		clients, dur, maxSize = 32, 2*time.Minute, 256<<20
	}
	n := Start(t, Options{Nodes: 12, TerritoryGiB: 64, Capacity: 64 << 30})
	gw := n.Gateways[0]
	var wg sync.WaitGroup
	var files, bytesMoved atomic.Int64
	ctx, cancel := context.WithTimeout(context.Background(), dur)
	defer cancel()
	for c := range clients {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(c), 9))
			for i := 0; ctx.Err() == nil; i++ {
				// Sizes spread on a log scale from 1 KiB to maxSize.
				size := int64(1024) << rng.IntN(1+bitsLen(maxSize/1024))
				size = min(size+rng.Int64N(size), maxSize)
				seed := byte(c*31 + i)
				want := sha256.New()
				io.Copy(want, newRandom(seed, size))
				fid := n.Put(0, fmt.Sprintf("load-%d-%d", c, i), newRandom(seed, size), size, nil)
				resp, err := http.Get(gw.URL + "/file/download/" + fid.String())
				if err != nil {
					t.Errorf("client %d: %v", c, err)
					return
				}
				got := sha256.New()
				m, err := io.Copy(got, resp.Body)
				resp.Body.Close()
				if err != nil || resp.StatusCode != 200 || m != size || !bytes.Equal(got.Sum(nil), want.Sum(nil)) {
					t.Errorf("client %d file %d (%d bytes): %d %v: bytes differ", c, i, size, resp.StatusCode, err)
					return
				}
				files.Add(1)
				bytesMoved.Add(2 * size)
			}
		})
	}
	wg.Wait()
	t.Logf("load: %d clients, %v: %d files up and down, %.0f MB moved, 0 errors; gateway peak RSS %d MiB",
		clients, dur, files.Load(), float64(bytesMoved.Load())/1e6, gw.PeakRSS()>>20)
	if files.Load() == 0 {
		t.Fatal("no file went through")
	}
}

func bitsLen(v int64) int {
	n := 0
	for v > 1 {
		v >>= 1
		n++
	}
	return n
}
