package ledger

import (
	"errors"
	"fmt"
	"net/url"
	"sort"
	"strings"
	"testing"

	"github.com/deoss/deoss/internal/types"
)

func objectsQuery(h *harness, owner, bucket, prefix, delim, start string, max int) ObjectList {
	v := url.Values{"prefix": {prefix}, "delim": {delim}, "start": {start}, "max": {fmt.Sprint(max)}}
	return query[ObjectList](h, "objects/"+h.addr(owner).String()+"/"+bucket+"?"+v.Encode())
}

func keysOf(l ObjectList) []string {
	var out []string
	for _, o := range l.Objects {
		out = append(out, o.Key)
	}
	return out
}

func TestObjectIndex(t *testing.T) {
	h := newHarness(t, true)
	h.setup()
	alice := h.addr("alice")
	// Buckets: valid names, an existing territory, by the owner or its gateway.
	h.fail("alice", Msg{CreateBucket: &CreateBucket{Owner: alice, Name: "Bad_Name", Territory: "home"}}, CodeInvalid)
	h.fail("alice", Msg{CreateBucket: &CreateBucket{Owner: alice, Name: "192.168.1.1", Territory: "home"}}, CodeInvalid)
	h.fail("alice", Msg{CreateBucket: &CreateBucket{Owner: alice, Name: "photos", Territory: "nowhere"}}, CodeNotFound)
	h.fail("gw2", Msg{CreateBucket: &CreateBucket{Owner: alice, Name: "photos", Territory: "home"}}, CodeUnauthorized)
	h.fail("bob", Msg{CreateBucket: &CreateBucket{Owner: alice, Name: "photos", Territory: "home"}}, CodeUnauthorized)
	h.ok("gw", Msg{CreateBucket: &CreateBucket{Owner: alice, Name: "photos", Territory: "home"}})
	h.fail("alice", Msg{CreateBucket: &CreateBucket{Owner: alice, Name: "photos", Territory: "home"}}, CodeConflict)
	if b := query[Bucket](h, "bucket/"+alice.String()+"/photos"); b.Territory != "home" || b.Owner != alice {
		t.Fatalf("bucket: %+v", b)
	}

	fid, r := h.declare("gw", "alice", 1000, 1, 0)
	if r.Code != CodeOK {
		t.Fatal(r)
	}
	other, _ := h.declare("gw", "alice", 2000, 2, 0)
	// Keys name files their owner owns; any UTF-8 key up to 1,024 bytes.
	put := func(key string, f types.FID) Msg {
		return Msg{PutObject: &PutObject{Owner: alice, Bucket: "photos", Key: key, FID: f, ETag: "abc",
			Headers: []Header{{Name: "content-type", Value: "image/png"}, {Name: "x-amz-meta-a", Value: "1"}}}}
	}
	h.fail("bob", Msg{PutObject: &PutObject{Owner: h.addr("bob"), Bucket: "photos", Key: "x", FID: fid}}, CodeNotFound)
	h.fail("gw", Msg{PutObject: &PutObject{Owner: alice, Bucket: "photos", Key: "x", FID: fid,
		Headers: []Header{{Name: "b", Value: "1"}, {Name: "a", Value: "2"}}}}, CodeInvalid)
	h.fail("gw", put(strings.Repeat("k", MaxKeyLen+1), fid), CodeInvalid)
	h.fail("gw", put("\xff", fid), CodeMalformed)                                                     // CBOR text is UTF-8
	keys := []string{"a/", "a//b", "a/b/c", "a/b/d", "a/c", "b", strings.Repeat("k", MaxKeyLen), "é"} // byte order
	for _, k := range keys {
		h.ok("gw", put(k, fid))
	}
	o := query[Object](h, "object/"+alice.String()+"/photos?key="+url.QueryEscape("a//b"))
	if o.FID != fid || o.Size != 1000 || o.ETag != "abc" || len(o.Headers) != 2 {
		t.Fatalf("object: %+v", o)
	}
	// Listing: byte order, prefixes rolled up at the delimiter, pages.
	l := objectsQuery(h, "alice", "photos", "", "", "", 1000)
	if got := strings.Join(keysOf(l), ","); got != strings.Join(keys, ",") || l.Truncated {
		t.Fatalf("list: %s", got)
	}
	l = objectsQuery(h, "alice", "photos", "a/", "/", "", 1000)
	if got := fmt.Sprint(keysOf(l), l.Prefixes); got != "[a/ a/c] [a// a/b/]" {
		t.Fatalf("delimited: %s", got)
	}
	l = objectsQuery(h, "alice", "photos", "a/", "/", "", 2)
	if fmt.Sprint(keysOf(l), l.Prefixes) != "[a/] [a//]" || !l.Truncated || l.Next != "a//" {
		t.Fatalf("page 1: %+v", l)
	}
	l = objectsQuery(h, "alice", "photos", "a/", "/", l.Next, 2)
	if fmt.Sprint(keysOf(l), l.Prefixes) != "[a/c] [a/b/]" || l.Truncated {
		t.Fatalf("page 2: %+v", l)
	}

	// A bucket with keys stays; deleting keys (missing ones too) empties it.
	h.fail("alice", Msg{DeleteBucket: &DeleteBucket{Owner: alice, Name: "photos"}}, CodeConflict)
	h.ok("gw", put("b", other)) // b moves to another file
	h.ok("alice", Msg{DeleteObjects: &DeleteObjects{Owner: alice, Bucket: "photos", Keys: keys[:4]}})
	if _, err := h.file(fid); err != nil {
		t.Fatalf("file went with keys left: %v", err)
	}
	h.ok("alice", Msg{DeleteObjects: &DeleteObjects{Owner: alice, Bucket: "photos", Keys: []string{"a/c", keys[6], "é", "never-was"}}})
	// With its last key, the file's only ownership ended: it is gone, its
	// space returned; the other file keeps its key.
	if _, err := h.file(fid); !errors.Is(err, ErrNotFound) {
		t.Fatalf("file %s outlived its last key: %v", fid, err)
	}
	if l := objectsQuery(h, "alice", "photos", "", "", "", 10); fmt.Sprint(keysOf(l)) != "[b]" {
		t.Fatalf("left: %+v", l)
	}
	// A native delete of the file takes its keys with it.
	h.ok("alice", Msg{DeleteFile: &DeleteFile{FID: other, Owner: alice}})
	if l := objectsQuery(h, "alice", "photos", "", "", "", 10); len(l.Objects) != 0 {
		t.Fatalf("keys outlived their file: %+v", l)
	}
	if tr := h.territory("alice", "home"); tr.Used != 0 || tr.Locked != 0 {
		t.Fatalf("space not returned: %+v", tr)
	}
	h.ok("alice", Msg{DeleteBucket: &DeleteBucket{Owner: alice, Name: "photos"}})
	if _, err := h.l.Query("bucket/" + alice.String() + "/photos"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("bucket remains: %v", err)
	}
}

// An order that expires takes the keys that named it.
func TestObjectKeysGoWithExpiredOrder(t *testing.T) {
	h := newHarness(t, true)
	h.setup()
	alice := h.addr("alice")
	h.ok("gw", Msg{CreateBucket: &CreateBucket{Owner: alice, Name: "b01", Territory: "home"}})
	fid, _ := h.declare("gw", "alice", 1000, 1, 0)
	h.ok("gw", Msg{PutObject: &PutObject{Owner: alice, Bucket: "b01", Key: "k", FID: fid}})
	h.block(DefaultParams().OrderTTL + 10)
	if _, err := h.file(fid); !errors.Is(err, ErrNotFound) {
		t.Fatalf("order did not expire: %v", err)
	}
	if l := objectsQuery(h, "alice", "b01", "", "", "", 10); len(l.Objects) != 0 {
		t.Fatalf("keys outlived their order: %+v", l)
	}
}

// naiveList is listObjects by the book: sort, filter, roll up, page.
func naiveList(keys []string, prefix, delim, start string, max int) (objs, prefixes []string, truncated bool) {
	sort.Strings(keys)
	var entries []string
	isPrefix := map[string]bool{}
	for _, k := range keys {
		if !strings.HasPrefix(k, prefix) || k <= start {
			continue
		}
		name := k
		if delim != "" {
			if i := strings.Index(k[len(prefix):], delim); i >= 0 {
				name = k[:len(prefix)+i+len(delim)]
				if name <= start {
					continue
				}
				isPrefix[name] = true
			}
		}
		if len(entries) > 0 && entries[len(entries)-1] == name {
			continue
		}
		entries = append(entries, name)
	}
	if len(entries) > max {
		entries, truncated = entries[:max], true
	}
	for _, e := range entries {
		if isPrefix[e] {
			prefixes = append(prefixes, e)
		} else {
			objs = append(objs, e)
		}
	}
	return objs, prefixes, truncated
}

// FuzzListObjects: the one-pass listing equals the reference for any keys,
// prefix, delimiter, start and page size, and paging by Next visits every
// entry once.
func FuzzListObjects(f *testing.F) {
	f.Add("a/b,a/c/d,a//e,b,a/", "a/", "/", "", uint8(2))
	f.Add("x,xy,xyz,y", "x", "y", "x", uint8(1))
	f.Add("k1,k2,k3", "", "", "k1", uint8(5))
	f.Fuzz(func(t *testing.T, keyList, prefix, delim, start string, max uint8) {
		m := int(max%8) + 1
		kv := NewMemKV()
		var owner types.Address
		seen := map[string]bool{}
		var keys []string
		var changes []Change
		for _, k := range strings.Split(keyList, ",") {
			if ValidKey(k) != nil || seen[k] {
				continue
			}
			seen[k] = true
			keys = append(keys, k)
			changes = append(changes, Change{Key: []byte(objectKey(owner, "b", k)), Value: marshal(&Object{Key: k})})
		}
		kv.Apply(changes)
		// The same keys three ways: in a KV without a seek, in one with a
		// seek (as the chain's), and half of them as a block's writes over
		// the seeking one, beside a write that deletes a key of the base.
		seek := &sortedKV{}
		var mine []Change
		for i, c := range changes {
			if i%2 == 0 {
				mine = append(mine, c)
			} else {
				seek.keys, seek.vals = append(seek.keys, c.Key), append(seek.vals, c.Value)
			}
		}
		ghost := []byte(objectKey(owner, "b", "\x7fghost"))
		if !seen["\x7fghost"] {
			seek.keys, seek.vals = append(seek.keys, ghost), append(seek.vals, marshal(&Object{Key: "\x7fghost"}))
		}
		sortKV(seek)
		over := newOverlay(seek)
		for _, c := range mine {
			over.set(string(c.Key), c.Value)
		}
		if !seen["\x7fghost"] {
			over.del(string(ghost))
		}
		for _, s := range []state{{newOverlay(kv)}, {over}} {
			checkList(t, s, owner, keys, prefix, delim, start, m)
		}
	})
}

func sortKV(s *sortedKV) {
	idx := make([]int, len(s.keys))
	for i := range idx {
		idx[i] = i
	}
	sort.Slice(idx, func(a, b int) bool { return string(s.keys[idx[a]]) < string(s.keys[idx[b]]) })
	var k, v [][]byte
	for _, i := range idx {
		k, v = append(k, s.keys[i]), append(v, s.vals[i])
	}
	s.keys, s.vals = k, v
}

func checkList(t *testing.T, s state, owner types.Address, keys []string, prefix, delim, start string, m int) {
	t.Helper()
	{
		l := listObjects(s, owner, "b", prefix, delim, start, m)
		objs, prefixes, truncated := naiveList(keys, prefix, delim, start, m)
		var got []string
		for _, o := range l.Objects {
			got = append(got, o.Key)
		}
		if fmt.Sprint(got) != fmt.Sprint(objs) || fmt.Sprint(l.Prefixes) != fmt.Sprint(prefixes) || l.Truncated != truncated {
			t.Fatalf("listed %q %q %v, want %q %q %v", got, l.Prefixes, l.Truncated, objs, prefixes, truncated)
		}
		// Paging from start to the end lists every entry once, in order.
		allObjs, allPrefixes, _ := naiveList(keys, prefix, delim, start, len(keys)+1)
		var pgObjs, pgPrefixes []string
		cur := start
		for range len(keys) + 2 {
			l := listObjects(s, owner, "b", prefix, delim, cur, m)
			for _, o := range l.Objects {
				pgObjs = append(pgObjs, o.Key)
			}
			pgPrefixes = append(pgPrefixes, l.Prefixes...)
			if !l.Truncated {
				break
			}
			cur = l.Next
		}
		if fmt.Sprint(pgObjs) != fmt.Sprint(allObjs) || fmt.Sprint(pgPrefixes) != fmt.Sprint(allPrefixes) {
			t.Fatalf("paged %q %q, want %q %q", pgObjs, pgPrefixes, allObjs, allPrefixes)
		}
	}
}
