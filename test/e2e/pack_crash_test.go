package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"lukechampine.com/blake3"

	"github.com/deoss/deoss/internal/auth"
	"github.com/deoss/deoss/internal/codec"
	"github.com/deoss/deoss/internal/failpoint"
	"github.com/deoss/deoss/internal/ledger"
	"github.com/deoss/deoss/internal/testutil"
	"github.com/deoss/deoss/internal/types"
)

// TestPackCrashes: a packing gateway is killed while clients append, then
// ends itself at each step of a pack's way (sealed, accepted as a file,
// declared); after each restart it finishes or redoes the step. Every
// object it acknowledged is packed on chain once (one location), reads
// back byte-identical, and its owner pays for it once.
func TestPackCrashes(t *testing.T) {
	if testing.Short() {
		t.Skip("starts 14 processes")
	}
	n := Start(t, Options{Nodes: 12, Packs: true, Gateway: func(_ int, cfg map[string]any) { cfg["cache_bytes"] = 1 }})
	gw := n.Gateways[0]
	var mu sync.Mutex
	acked := map[types.FID][]byte{}
	tried := map[types.FID]int{}
	var seq atomic.Int64
	// put uploads one new object; it reports whether the gateway
	// acknowledged it.
	put := func() bool {
		i := int(seq.Add(1))
		data := randomBytes(uint64(70_000+i), 1+(i*7919)%(16<<10))
		oid := codec.ObjectID(types.EncryptionNone, n.User.Address(), uint64(len(data)), blake3.Sum256(data))
		mu.Lock()
		tried[oid] = len(data)
		mu.Unlock()
		req, _ := http.NewRequest("PUT", fmt.Sprintf("%s/object/crash-%d?territory=home", gw.URL, i), bytes.NewReader(data))
		req.ContentLength = int64(len(data))
		if err := auth.SignRequest(req, n.User, gw.Address, 5*time.Minute); err != nil {
			t.Fatal(err)
		}
		resp, err := n.HTTP.Do(req)
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		var rec struct {
			FID types.FID `json:"fid"`
		}
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusCreated || json.Unmarshal(b, &rec) != nil {
			return false
		}
		if rec.FID != oid {
			t.Errorf("object %d: FID %s, its OID is %s", i, rec.FID, oid)
		}
		mu.Lock()
		acked[oid] = data
		mu.Unlock()
		return true
	}
	ackedCount := func() int {
		mu.Lock()
		defer mu.Unlock()
		return len(acked)
	}

	// Killed while eight clients append.
	var stop atomic.Bool
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for !stop.Load() {
				put()
			}
		})
	}
	if !testutil.Eventually(time.Minute, 10*time.Millisecond, func() bool { return ackedCount() >= 200 }) {
		t.Fatal("the gateway acknowledged too few objects")
	}
	gw.Kill()
	stop.Store(true)
	wg.Wait()
	t.Logf("killed during appends: %d objects acknowledged", ackedCount())

	// Then ended at each step of a pack's way, and restarted.
	for _, point := range []string{failpoint.PackSealed, failpoint.PackAccepted, failpoint.PackDeclared} {
		gw.SetEnv(failpoint.Env + "=" + point)
		gw.Restart()
		testutil.WaitHTTPWith(t, n.HTTP, gw.URL+"/version")
		for range 20 { // more objects, which may land before or after the point
			put()
		}
		code := make(chan int, 1)
		go func() { code <- gw.Wait() }()
		select {
		case c := <-code:
			if c != failpoint.ExitCode {
				t.Fatalf("the gateway ended with %d before %s", c, point)
			}
		case <-time.After(3 * time.Minute):
			t.Fatalf("the gateway never reached %s", point)
		}
		t.Logf("ended at %s: %d objects acknowledged", point, ackedCount())
	}
	gw.SetEnv()
	gw.Restart()
	testutil.WaitHTTPWith(t, n.HTTP, gw.URL+"/version")

	ctx := context.Background()
	var lastErr error
	if !testutil.Eventually(3*time.Minute, 200*time.Millisecond, func() bool {
		for oid := range acked {
			v, err := n.Chain.Packed(ctx, oid)
			if err != nil {
				lastErr = fmt.Errorf("%s: %w", oid, err)
				return false
			}
			if len(v.Locations) != 1 {
				t.Fatalf("object %s is in %d packs: %+v", oid, len(v.Locations), v.Locations)
			}
		}
		return true
	}) {
		t.Fatalf("an acknowledged object was not packed: %v", lastErr)
	}
	for oid, data := range acked {
		if st, _, body := get(t, gw.URL+"/file/download/"+oid.String(), nil); st != http.StatusOK || !bytes.Equal(body, data) {
			t.Fatalf("object %s: %d", oid, st)
		}
	}
	// The owner pays once for each object on chain (acknowledged, or
	// buffered and cut off before its answer).
	var want uint64
	for oid, size := range tried {
		if _, err := n.Chain.Packed(ctx, oid); err == nil {
			want += ledger.PackCharge(uint64(size))
		}
	}
	tr, err := n.Chain.Territory(ctx, n.User.Address(), "home")
	if err != nil || tr.Used != want {
		t.Fatalf("the territory pays %d, the packed objects' charges sum to %d (%v)", tr.Used, want, err)
	}
	t.Logf("%d acknowledged objects packed once each and read back", len(acked))
}

// TestPackedSpaceHeld: buffered objects count against what an account may
// hold at a gateway before the chain has them (here a 1 MiB cap, and no
// seal for an hour), across a restart: the buffer cannot take more than
// would be charged, so no acknowledged object is refused at declaration.
func TestPackedSpaceHeld(t *testing.T) {
	if testing.Short() {
		t.Skip("starts 6 processes")
	}
	n := Start(t, Options{Nodes: 4, Packs: true, Gateway: func(_ int, cfg map[string]any) {
		cfg["max_pending_bytes"] = 1 << 20
		cfg["pack_max_age"] = "1h"
	}})
	gw := n.Gateways[0]
	put := func(i int) int {
		data := randomBytes(uint64(90_000+i), 64<<10)
		resp := n.Do(nil, "PUT", fmt.Sprintf("%s/object/held-%d?territory=home", gw.URL, i), bytes.NewReader(data), int64(len(data)), nil)
		defer resp.Body.Close()
		io.Copy(io.Discard, resp.Body)
		return resp.StatusCode
	}
	accepted := 0
	for i := range 40 {
		st := put(i)
		if st == http.StatusInsufficientStorage {
			break
		}
		if st != http.StatusCreated {
			t.Fatalf("put %d: %d", i, st)
		}
		accepted++
	}
	// The cap is counted in padded bytes (the gateway's bound for an
	// encrypted file of the cap's size): 17 objects of 64 KiB here.
	if limit := types.ProfileV2.PaddedSize(1<<20, types.EncryptionAES256GCM); accepted == 0 || uint64(accepted)*(64<<10) > limit {
		t.Fatalf("%d objects of 64 KiB buffered under a cap of %d bytes", accepted, limit)
	}
	gw.Kill()
	gw.Restart()
	testutil.WaitHTTPWith(t, n.HTTP, gw.URL+"/version")
	if st := put(100); st != http.StatusInsufficientStorage {
		t.Fatalf("after a restart, one more object past the cap: %d", st)
	}
	t.Logf("%d objects of 64 KiB buffered, then refused", accepted)
}
