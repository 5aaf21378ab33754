package e2e

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"lukechampine.com/blake3"

	"github.com/deoss/deoss/internal/codec"
	"github.com/deoss/deoss/internal/ledger"
	"github.com/deoss/deoss/internal/testutil"
	"github.com/deoss/deoss/internal/types"
)

// TestPackedObjects: 10,000 small objects (1 byte to 64 KiB) uploaded
// concurrently to two gateways, through the native API and through S3,
// read back byte-identical from the writing gateway and the other one
// right after their uploads (from the buffer, a peer's buffer or a pack)
// and again once packed; they cost their owner roundup(len, 4 KiB) each
// and the nodes a few times their bytes, not a segment each; deletes of
// half of them return their charges at once; half-dead packs are
// compacted away and the nodes drop their bytes; and with 8 of a pack's 12
// holders killed its objects still read.
func TestPackedObjects(t *testing.T) {
	if testing.Short() {
		t.Skip("starts 15 processes")
	}
	e := startS3With(t, Options{Nodes: 12, Gateways: 2, Packs: true,
		Gateway: func(_ int, cfg map[string]any) {
			cfg["cache_bytes"] = 1         // reads go to the nodes
			cfg["pack_compact_age"] = "1s" // compaction as soon as half is deleted
		}})
	n, ctx := e.n, context.Background()
	owner := n.User.Address()
	must(e.clients[0].CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("small")}))(t)
	const count = 10_000
	objs := make([][]byte, count)
	oids := make([]types.FID, count)
	viaS3 := func(i int) bool { return i%5 == 4 }
	key := func(i int) string { return fmt.Sprintf("o/%05d", i) }
	var total, charges uint64
	seen := map[types.FID]bool{}
	for i := range objs {
		// Sizes spread over powers of two, most of them small. Each object
		// is unique (a second 1-byte object with the same byte grows by
		// one), so that each is charged and deleted on its own.
		k := i % 17
		for size := min((1<<k)+(i*7919)%(1<<k), 64<<10); ; size++ {
			objs[i] = randomBytes(uint64(5000+i), size)
			oids[i] = codec.ObjectID(types.EncryptionNone, owner, uint64(size), blake3.Sum256(objs[i]))
			if !seen[oids[i]] {
				break
			}
		}
		seen[oids[i]] = true
		total += uint64(len(objs[i]))
		charges += ledger.PackCharge(uint64(len(objs[i])))
	}
	began := time.Now()
	phase := func(what string) { t.Logf("%s: %.1f s", what, time.Since(began).Seconds()) }
	readBack := func(g, i int, when string) {
		st, _, body := get(t, n.Gateways[g].URL+"/file/download/"+oids[i].String(), nil)
		// Eight downloads at once per address: a worker's next request can
		// reach the gateway before its last one let go of its slot. A 429
		// is asked again until a slot is free, as a client would.
		if st == http.StatusTooManyRequests {
			testutil.Eventually(30*time.Second, 50*time.Millisecond, func() bool {
				st, _, body = get(t, n.Gateways[g].URL+"/file/download/"+oids[i].String(), nil)
				return st != http.StatusTooManyRequests
			})
		}
		if st != http.StatusOK || !bytes.Equal(body, objs[i]) {
			t.Errorf("object %d at gateway %d %s: %d", i, g, when, st)
		}
	}
	parallel(8, count, func(i int) {
		g := i % 2
		if viaS3(i) {
			if _, err := e.clients[g].PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("small"), Key: aws.String(key(i)), Body: bytes.NewReader(objs[i])}); err != nil {
				t.Errorf("s3 put %d: %v", i, err)
				return
			}
			if got, _ := getBytes(t, e.clients[g], &s3.GetObjectInput{Bucket: aws.String("small"), Key: aws.String(key(i))}); !bytes.Equal(got, objs[i]) {
				t.Errorf("s3 object %d read back wrong at once", i)
			}
		} else if oid := n.Put(g, fmt.Sprintf("small-%d", i), bytes.NewReader(objs[i]), int64(len(objs[i])), nil); oid != oids[i] {
			t.Errorf("object %d: FID %s, its OID is %s", i, oid, oids[i])
			return
		}
		// Read-after-write at the writing gateway, from its buffer or its
		// pack; and at the other one, from the writer's buffer (a peer)
		// or from its pack if it was sealed already.
		readBack(g, i, "right after its upload")
		readBack(1-g, i, "right after its upload")
	})
	if t.Failed() {
		t.FailNow()
	}
	phase("uploads, each read back at both gateways")
	packs := map[types.FID]bool{}
	var lastErr error
	if !testutil.Eventually(3*time.Minute, 200*time.Millisecond, func() bool {
		for _, oid := range oids {
			v, err := n.Chain.Packed(ctx, oid)
			if err != nil {
				lastErr = err
				return false
			}
			packs[v.Locations[0].Pack] = true
		}
		return true
	}) {
		t.Fatalf("not every object was packed: %v", lastErr)
	}
	// The S3 keys reach the chain naming the objects' OIDs.
	eventually(t, 3*time.Minute, func() error {
		for i := range count {
			if !viaS3(i) {
				continue
			}
			o, err := n.Chain.Object(ctx, owner, "small", key(i))
			if err != nil {
				return fmt.Errorf("%s: %w", key(i), err)
			}
			if o.FID != oids[i] {
				t.Fatalf("%s names %s, the object is %s", key(i), o.FID, oids[i])
			}
		}
		return nil
	})
	phase("packed, keys on chain")
	// Read from the gateway that did not take each object: from its pack
	// on the nodes.
	parallel(8, count, func(i int) {
		if viaS3(i) {
			if got, _ := getBytes(t, e.clients[1-i%2], &s3.GetObjectInput{Bucket: aws.String("small"), Key: aws.String(key(i))}); !bytes.Equal(got, objs[i]) {
				t.Errorf("s3 object %d from the other gateway", i)
			}
			return
		}
		readBack(1-i%2, i, "packed")
	})
	if t.Failed() {
		t.FailNow()
	}
	phase("read from packs")
	// A range of a packed object.
	if st, _, body := get(t, n.Gateways[1].URL+"/file/download/"+oids[15].String(), map[string]string{"Range": "bytes=3-9"}); st != http.StatusPartialContent || !bytes.Equal(body, objs[15][3:10]) {
		t.Fatalf("a range of a packed object: %d %q", st, body)
	}
	var onNodes uint64
	for p := range packs {
		f, err := n.Chain.File(ctx, p)
		if err != nil || f.Pack == nil {
			t.Fatalf("pack %s: %v", p, err)
		}
		onNodes += ledger.ColumnBytes(&f.Layout) * types.TotalShards
	}
	t.Logf("%d objects, %d bytes, in %d packs: %d bytes on nodes (%.2fx the objects' bytes; 3x is the code's)", count, total, len(packs), onNodes, float64(onNodes)/float64(total))
	if onNodes > 4*3*total {
		t.Fatalf("nodes hold %d bytes for %d bytes of objects", onNodes, total)
	}
	home := func() uint64 {
		tr, err := n.Chain.Territory(ctx, owner, "home")
		if err != nil {
			t.Fatal(err)
		}
		return tr.Used
	}
	if got := home(); got != charges {
		t.Fatalf("the territory pays %d, the objects' charges sum to %d", got, charges)
	}

	// Deletes of half of them (i/2 even: half of each gateway's, native
	// and S3 alike): their charges come back at once.
	deleted := func(i int) bool { return i/2%2 == 0 }
	parallel(8, count, func(i int) {
		switch {
		case !deleted(i):
		case viaS3(i):
			if _, err := e.clients[0].DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String("small"), Key: aws.String(key(i))}); err != nil {
				t.Errorf("s3 delete %d: %v", i, err)
			}
		default:
			resp := n.Do(nil, "DELETE", n.Gateways[0].URL+"/file/"+oids[i].String(), nil, 0, nil)
			resp.Body.Close()
			if resp.StatusCode != http.StatusNoContent {
				t.Errorf("delete %d: %d", i, resp.StatusCode)
			}
		}
	})
	if t.Failed() {
		t.FailNow()
	}
	for i := range count {
		if deleted(i) {
			charges -= ledger.PackCharge(uint64(len(objs[i])))
		}
	}
	// A native delete is in a block when it answers (this client may ask
	// the chain a moment before the block is committed); an S3 key's
	// delete reaches the chain from the gateway's journal.
	var got uint64
	if !testutil.Eventually(time.Minute, 50*time.Millisecond, func() bool { got = home(); return got == charges }) {
		t.Fatalf("after the deletes the territory pays %d, want %d", got, charges)
	}
	for _, i := range []int{0, 4, 5, 9} { // native and S3, both gateways
		if st, _, _ := get(t, n.Gateways[1-i%2].URL+"/file/download/"+oids[i].String(), nil); st != http.StatusNotFound {
			t.Fatalf("deleted object %d: %d", i, st)
		}
	}

	phase("deletes")
	// Compaction: a pack with at least 30% of its bytes dead moves its
	// live objects to new packs and goes (its nodes collect it); one with
	// less stays. (Which objects share a pack depends on the uploads'
	// order, so the test reads each pack's share once the deletes are in.)
	goes := map[types.FID]bool{}
	for p := range packs {
		f, err := n.Chain.File(ctx, p)
		if err != nil || f.Pack == nil || 1-float64(f.Pack.LiveBytes)/float64(f.Layout.Size) >= 0.3 {
			goes[p] = true // compacted already, emptied, or due
		}
	}
	if len(goes) == 0 {
		t.Fatal("no pack is half dead: the deletes do not test compaction")
	}
	if !testutil.Eventually(5*time.Minute, 200*time.Millisecond, func() bool {
		for p := range goes {
			if _, err := n.Chain.File(ctx, p); err == nil {
				return false
			}
		}
		return true
	}) {
		t.Fatalf("the packs with 30%% or more dead bytes were not compacted away (%d of %d due)", len(goes), len(packs))
	}
	phase("compacted")
	holding := map[types.FID]bool{}
	var mu sync.Mutex
	parallel(8, count, func(i int) {
		if deleted(i) {
			return
		}
		v, err := n.Chain.Packed(ctx, oids[i])
		if err != nil || len(v.Locations) != 1 || goes[v.Locations[0].Pack] || !v.Locations[0].Credited {
			t.Errorf("object %d after compaction: %+v %v", i, v, err)
			return
		}
		mu.Lock()
		holding[v.Locations[0].Pack] = true
		mu.Unlock()
		readBack(1-i%2, i, "after compaction")
	})
	if t.Failed() {
		t.FailNow()
	}
	for p := range packs {
		if !goes[p] && !holding[p] {
			t.Fatalf("pack %s had too few dead bytes to compact, yet its objects moved", p)
		}
	}
	if got := home(); got != charges {
		t.Fatalf("compaction changed the owner's charges: %d, want %d", got, charges)
	}
	var after uint64
	for p := range holding {
		f, _ := n.Chain.File(ctx, p)
		after += ledger.ColumnBytes(&f.Layout) * types.TotalShards
	}
	t.Logf("compaction: %d of %d packs due; %d bytes on nodes became %d (in %d packs)", len(goes), len(packs), onNodes, after, len(holding))
	if after >= onNodes {
		t.Fatalf("compaction left %d bytes on nodes of %d", after, onNodes)
	}

	phase("read after compaction")
	// 8 of the 12 holders of a pack die: its live objects still read.
	v, err := n.Chain.Packed(ctx, oids[2])
	if err != nil {
		t.Fatal(err)
	}
	f, err := n.Chain.File(ctx, v.Locations[0].Pack)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range f.Columns[:8] {
		n.NodeByAddress(c.Node).Kill()
	}
	var read atomic.Int64
	parallel(8, count, func(i int) {
		if deleted(i) {
			return
		}
		if v, err := n.Chain.Packed(ctx, oids[i]); err != nil || v.Locations[0].Pack != f.FID {
			return
		}
		readBack(1, i, "with 8 holders of its pack dead")
		read.Add(1)
	})
	if read.Load() == 0 {
		t.Fatal("no live object in the pack whose holders died")
	}
	t.Logf("%d objects of pack %s read with 8 of its 12 holders dead", read.Load(), f.FID)
}

// TestS3PackedObjects: small S3 PUTs are packed; each reads back at once
// from the writing gateway (its buffer and key journal), its key reaches
// the chain naming the object's OID once the pack is declared, and the
// other gateway reads it from the pack; deleting its last key ends the
// object.
func TestS3PackedObjects(t *testing.T) {
	if testing.Short() {
		t.Skip("starts 15 processes")
	}
	e := startS3With(t, Options{Nodes: 12, Gateways: 2, Packs: true})
	ctx := context.Background()
	c0, c1 := e.clients[0], e.clients[1]
	must(c0.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("small")}))(t)
	const count = 60
	objs := make([][]byte, count)
	var wg sync.WaitGroup
	for w := range 6 {
		wg.Go(func() {
			for i := w; i < count; i += 6 {
				objs[i] = randomBytes(uint64(9000+i), 1+(i*4099)%(32<<10))
				key := fmt.Sprintf("dir/obj-%03d", i)
				if _, err := c0.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("small"), Key: aws.String(key), Body: bytes.NewReader(objs[i])}); err != nil {
					t.Errorf("put %s: %v", key, err)
					return
				}
				if got, _ := getBytes(t, c0, &s3.GetObjectInput{Bucket: aws.String("small"), Key: aws.String(key)}); !bytes.Equal(got, objs[i]) {
					t.Errorf("%s read back wrong at once", key)
				}
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	owner := e.n.User.Address()
	for i := range count {
		key := fmt.Sprintf("dir/obj-%03d", i)
		var o *ledger.Object
		eventually(t, 3*time.Minute, func() error {
			var err error
			o, err = e.n.Chain.Object(ctx, owner, "small", key)
			return err
		})
		if _, err := e.n.Chain.Packed(ctx, o.FID); err != nil {
			t.Fatalf("%s names %s, not a packed object: %v", key, o.FID, err)
		}
		if got, _ := getBytes(t, c1, &s3.GetObjectInput{Bucket: aws.String("small"), Key: aws.String(key)}); !bytes.Equal(got, objs[i]) {
			t.Fatalf("%s from the other gateway", key)
		}
	}
	o := must(e.n.Chain.Object(ctx, owner, "small", "dir/obj-000"))(t)
	must(c0.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String("small"), Key: aws.String("dir/obj-000")}))(t)
	eventually(t, time.Minute, func() error {
		if _, err := e.n.Chain.Packed(ctx, o.FID); err == nil {
			return fmt.Errorf("object %s outlived its last key", o.FID)
		}
		return nil
	})
}
