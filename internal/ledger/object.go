package ledger

import (
	"net/url"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/deoss/deoss/internal/types"
)

// The object index (S3): an owner's buckets, each bound to one of the
// owner's territories, and their keys, each naming a file the owner owns.
// A key is metadata: copies and renames write a key, the same content under
// many keys is one file, and the owner's ownership of a file ends with its
// last key.
//
//	bk/<owner><bucket>                  Bucket
//	ob/<owner><bucket>/<key>            Object
//	kf/<fid><owner><bucket>/<key>       a file's keys (empty value)
//
// Bucket names hold no '/', so "<bucket>/" prefixes exactly one bucket's
// keys, and keys sort in byte order, as S3 lists them.
const (
	pBucket  = "bk/"
	pObject  = "ob/"
	pFileKey = "kf/"
)

// Limits of the object index.
const (
	MaxKeyLen       = 1024 // bytes of UTF-8, as S3
	MaxObjectMeta   = 4096 // bytes of header names and values kept per key
	MaxETagLen      = 64
	MaxDeleteKeys   = 1000 // keys in one DeleteObjects, as S3
	MaxBucketsOwned = 1000
)

// Bucket is one owner's bucket.
type Bucket struct {
	Owner     types.Address `json:"owner"`
	Name      string        `json:"name"`
	Territory string        `json:"territory"`
	Created   int64         `json:"created"` // block time
}

// Header is one stored response header of an object (Content-Type,
// x-amz-meta-*, ...), its name in lower case.
type Header struct {
	Name  string `cbor:"1,keyasint" json:"name"`
	Value string `cbor:"2,keyasint" json:"value"`
}

// Object is one key's record.
type Object struct {
	Key      string    `json:"key"`
	FID      types.FID `json:"fid"`
	Size     uint64    `json:"size"`
	ETag     string    `json:"etag"`
	Modified int64     `json:"modified"` // block time
	Headers  []Header  `json:"headers,omitempty"`
}

// ObjectList is a page of a bucket's keys ("objects" query).
type ObjectList struct {
	Objects []Object `json:"objects"`
	// Prefixes are the common prefixes rolled up at the delimiter.
	Prefixes  []string `json:"prefixes,omitempty"`
	Truncated bool     `json:"truncated,omitempty"`
	// Next is the last key or prefix of the page: the next page starts
	// after it.
	Next string `json:"next,omitempty"`
}

// Object index messages: sent by the owner or a gateway it authorized.
type (
	// CreateBucket makes a bucket bound to one of the owner's territories.
	CreateBucket struct {
		Owner     types.Address `cbor:"1,keyasint"`
		Name      string        `cbor:"2,keyasint"`
		Territory string        `cbor:"3,keyasint"`
	}
	// DeleteBucket removes an empty bucket.
	DeleteBucket struct {
		Owner types.Address `cbor:"1,keyasint"`
		Name  string        `cbor:"2,keyasint"`
	}
	// PutObject points a key at a file the owner owns (a new key, or one
	// replaced: the file it named loses a key).
	PutObject struct {
		Owner   types.Address `cbor:"1,keyasint"`
		Bucket  string        `cbor:"2,keyasint"`
		Key     string        `cbor:"3,keyasint"`
		FID     types.FID     `cbor:"4,keyasint"`
		ETag    string        `cbor:"5,keyasint"`
		Headers []Header      `cbor:"6,keyasint,omitempty"`
	}
	// DeleteObjects removes keys; a missing key is no error.
	DeleteObjects struct {
		Owner  types.Address `cbor:"1,keyasint"`
		Bucket string        `cbor:"2,keyasint"`
		Keys   []string      `cbor:"3,keyasint"`
	}
)

// ValidBucket checks an S3 bucket name: 3 to 63 of a-z, 0-9, '.' and '-',
// starting and ending with a letter or digit, no "..", not an IP address.
func ValidBucket(s string) error {
	if len(s) < 3 || len(s) > 63 {
		return errf(ErrInvalid, "bucket name %q: 3 to 63 characters", s)
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '.' || c == '-') {
			return errf(ErrInvalid, "bucket name %q: only a-z, 0-9, '.' and '-'", s)
		}
	}
	alnum := func(c byte) bool { return c >= 'a' && c <= 'z' || c >= '0' && c <= '9' }
	if !alnum(s[0]) || !alnum(s[len(s)-1]) {
		return errf(ErrInvalid, "bucket name %q: starts and ends with a letter or digit", s)
	}
	if strings.Contains(s, "..") {
		return errf(ErrInvalid, "bucket name %q: no \"..\"", s)
	}
	if parts := strings.Split(s, "."); len(parts) == 4 {
		ip := true
		for _, p := range parts {
			if _, err := strconv.ParseUint(p, 10, 8); err != nil {
				ip = false
			}
		}
		if ip {
			return errf(ErrInvalid, "bucket name %q: not an IP address", s)
		}
	}
	return nil
}

// ValidKey checks an object key: 1 to 1,024 bytes of UTF-8. Slashes,
// empty segments and a trailing '/' are keys like any other.
func ValidKey(k string) error {
	if len(k) == 0 || len(k) > MaxKeyLen {
		return errf(ErrInvalid, "key must be 1 to %d bytes", MaxKeyLen)
	}
	if !utf8.ValidString(k) {
		return errf(ErrInvalid, "key is not UTF-8")
	}
	return nil
}

func validHeaders(hs []Header) error {
	n := 0
	for i, h := range hs {
		if h.Name == "" || h.Name != strings.ToLower(h.Name) || strings.ContainsAny(h.Name, ": \r\n") {
			return errf(ErrInvalid, "header name %q", h.Name)
		}
		if strings.ContainsAny(h.Value, "\r\n") || !utf8.ValidString(h.Value) {
			return errf(ErrInvalid, "header %s: value has a line break or is not UTF-8", h.Name)
		}
		if i > 0 && hs[i-1].Name >= h.Name {
			return errf(ErrInvalid, "headers must be sorted by name, each once")
		}
		n += len(h.Name) + len(h.Value)
	}
	if n > MaxObjectMeta {
		return errf(ErrInvalid, "headers take %d bytes, at most %d", n, MaxObjectMeta)
	}
	return nil
}

func bucketKey(owner types.Address, name string) string {
	return pBucket + string(owner[:]) + name
}

func objectKey(owner types.Address, bucket, key string) string {
	return pObject + string(owner[:]) + bucket + "/" + key
}

func fileKeyKey(fid types.FID, owner types.Address, bucket, key string) string {
	return pFileKey + string(fid[:]) + string(owner[:]) + bucket + "/" + key
}

// actsFor checks that sender is owner, or a gateway owner authorized.
func (l *Ledger) actsFor(sender, owner types.Address) error {
	if sender == owner {
		return nil
	}
	if _, err := l.gateway(sender); err != nil || !(state{l.o}).flag(authzKey(owner, sender)) {
		return errf(ErrUnauthorized, "only %s or a gateway it authorized may do this", owner)
	}
	return nil
}

func (l *Ledger) bucketOf(owner types.Address, name string) (*Bucket, error) {
	b, ok := load[Bucket](state{l.o}, bucketKey(owner, name))
	if !ok {
		return nil, errf(ErrNotFound, "bucket %q", name)
	}
	return b, nil
}

func (l *Ledger) createBucket(sender types.Address, m *CreateBucket) error {
	if err := l.actsFor(sender, m.Owner); err != nil {
		return err
	}
	if err := ValidBucket(m.Name); err != nil {
		return err
	}
	s := state{l.o}
	if s.flag(bucketKey(m.Owner, m.Name)) {
		return errf(ErrConflict, "bucket %q exists", m.Name)
	}
	if _, err := l.territory(m.Owner, m.Territory); err != nil {
		return err
	}
	n := 0
	s.o.iterate(pBucket+string(m.Owner[:]), func(string, []byte) bool { n++; return n < MaxBucketsOwned })
	if n >= MaxBucketsOwned {
		return errf(ErrTooMany, "an account has at most %d buckets", MaxBucketsOwned)
	}
	s.put(bucketKey(m.Owner, m.Name), &Bucket{Owner: m.Owner, Name: m.Name, Territory: m.Territory, Created: l.now})
	l.emit(EventBucket, AttrAction, ActionCreated, AttrOwner, m.Owner.String(), AttrBucket, m.Name)
	return nil
}

func (l *Ledger) deleteBucket(sender types.Address, m *DeleteBucket) error {
	if err := l.actsFor(sender, m.Owner); err != nil {
		return err
	}
	if _, err := l.bucketOf(m.Owner, m.Name); err != nil {
		return err
	}
	s := state{l.o}
	empty := true
	s.o.iterate(objectKey(m.Owner, m.Name, ""), func(string, []byte) bool { empty = false; return false })
	if !empty {
		return errf(ErrConflict, "bucket %q is not empty", m.Name)
	}
	s.o.del(bucketKey(m.Owner, m.Name))
	l.emit(EventBucket, AttrAction, ActionDeleted, AttrOwner, m.Owner.String(), AttrBucket, m.Name)
	return nil
}

func (l *Ledger) putObject(sender types.Address, m *PutObject) error {
	if err := l.actsFor(sender, m.Owner); err != nil {
		return err
	}
	if _, err := l.bucketOf(m.Owner, m.Bucket); err != nil {
		return err
	}
	if err := ValidKey(m.Key); err != nil {
		return err
	}
	if len(m.ETag) > MaxETagLen {
		return errf(ErrInvalid, "etag longer than %d bytes", MaxETagLen)
	}
	if err := validHeaders(m.Headers); err != nil {
		return err
	}
	size, err := l.contentSize(m.FID)
	if err != nil {
		return err
	}
	if _, ok := l.fileOwner(m.FID, m.Owner); !ok {
		return errf(ErrUnauthorized, "%s does not own file %s", m.Owner, m.FID)
	}
	s := state{l.o}
	okey := objectKey(m.Owner, m.Bucket, m.Key)
	old, had := load[Object](s, okey)
	o := &Object{Key: m.Key, FID: m.FID, Size: size, ETag: m.ETag, Modified: l.now, Headers: m.Headers}
	s.put(okey, o)
	s.setFlag(fileKeyKey(m.FID, m.Owner, m.Bucket, m.Key))
	if had && old.FID != m.FID {
		l.unkey(old.FID, m.Owner, m.Bucket, m.Key)
	}
	l.emit(EventObject, AttrAction, ActionPut, AttrOwner, m.Owner.String(), AttrBucket, m.Bucket, AttrFID, m.FID.String())
	return nil
}

func (l *Ledger) deleteObjects(sender types.Address, m *DeleteObjects) error {
	if err := l.actsFor(sender, m.Owner); err != nil {
		return err
	}
	if _, err := l.bucketOf(m.Owner, m.Bucket); err != nil {
		return err
	}
	if len(m.Keys) == 0 || len(m.Keys) > MaxDeleteKeys {
		return errf(ErrInvalid, "1 to %d keys per delete", MaxDeleteKeys)
	}
	for _, k := range m.Keys {
		if err := ValidKey(k); err != nil {
			return err
		}
	}
	s := state{l.o}
	for _, k := range m.Keys {
		o, ok := load[Object](s, objectKey(m.Owner, m.Bucket, k))
		if !ok {
			continue
		}
		s.o.del(objectKey(m.Owner, m.Bucket, k))
		l.unkey(o.FID, m.Owner, m.Bucket, k)
		l.emit(EventObject, AttrAction, ActionDeleted, AttrOwner, m.Owner.String(), AttrBucket, m.Bucket, AttrFID, o.FID.String())
	}
	return nil
}

// unkey drops one of a file's keys; with its owner's last key goes the
// owner's ownership (and the file, with its last owner).
func (l *Ledger) unkey(fid types.FID, owner types.Address, bucket, key string) {
	s := state{l.o}
	s.o.del(fileKeyKey(fid, owner, bucket, key))
	if l.hasKeys(fid, owner) {
		return
	}
	l.release(fid, owner)
}

func (l *Ledger) hasKeys(fid types.FID, owner types.Address) bool {
	found := false
	(state{l.o}).o.iterate(pFileKey+string(fid[:])+string(owner[:]), func(string, []byte) bool { found = true; return false })
	return found
}

// dropKeys removes the keys an owner leaving a file still had (a native
// delete, an expired order): no key names a file its owner no longer owns.
func (l *Ledger) dropKeys(fid types.FID, owner types.Address) {
	s := state{l.o}
	prefix := pFileKey + string(fid[:]) + string(owner[:])
	var keys []string
	s.o.iterate(prefix, func(k string, _ []byte) bool { keys = append(keys, k); return true })
	for _, k := range keys {
		s.o.del(k)
		s.o.del(pObject + string(owner[:]) + k[len(prefix):])
	}
}

// listObjects answers the "objects" query: keys of a bucket with a prefix,
// after start, at most max entries (keys and rolled-up prefixes), in byte
// order. With a delimiter, a key whose rest past the prefix holds it rolls
// up into one common prefix, which counts once; the walk then seeks past
// every key under that prefix (on a SeekKV), so a page costs its entries
// and a seek each, not the keys before it or under its prefixes.
func listObjects(s state, owner types.Address, bucket, prefix, delim, start string, max int) ObjectList {
	out := ObjectList{Objects: []Object{}}
	base := objectKey(owner, bucket, "")
	from := base + prefix
	if start != "" && base+start+"\x00" > from {
		from = base + start + "\x00" // the first key past start
	}
	n := 0
	for from != "" {
		next := ""
		s.o.iterateFrom(base+prefix, from, func(k string, v []byte) bool {
			key := k[len(base):]
			if key <= start {
				return true
			}
			if delim != "" {
				if i := strings.Index(key[len(prefix):], delim); i >= 0 {
					cp := key[:len(prefix)+i+len(delim)]
					if cp <= start {
						next = prefixEnd(base + cp) // start lies inside this prefix
						return false
					}
					if n == max {
						out.Truncated = true
						return false
					}
					out.Prefixes = append(out.Prefixes, cp)
					out.Next = cp
					n++
					next = prefixEnd(base + cp)
					return false
				}
			}
			if n == max {
				out.Truncated = true
				return false
			}
			var o Object
			mustUnmarshal(v, &o)
			out.Objects = append(out.Objects, o)
			out.Next = key
			n++
			return true
		})
		from = next
	}
	if !out.Truncated {
		out.Next = ""
	}
	return out
}

// prefixEnd is the least key greater than every key with prefix p ("" if
// there is none: p is all 0xff).
func prefixEnd(p string) string {
	b := []byte(p)
	for i := len(b) - 1; i >= 0; i-- {
		if b[i] != 0xff {
			b[i]++
			return string(b[:i+1])
		}
	}
	return ""
}

// objectQuery answers bucket, buckets, object and objects (query.go).
func (q querier) objectQuery(kind string, owner types.Address, bucket string, v url.Values) (any, error) {
	switch kind {
	case "buckets":
		return all[Bucket](q.s, pBucket+string(owner[:])), nil
	case "bucket":
		b, ok := load[Bucket](q.s, bucketKey(owner, bucket))
		if !ok {
			return nil, errf(ErrNotFound, "bucket %q", bucket)
		}
		return b, nil
	case "object":
		o, ok := load[Object](q.s, objectKey(owner, bucket, v.Get("key")))
		if !ok {
			return nil, errf(ErrNotFound, "key %q in bucket %q", v.Get("key"), bucket)
		}
		return o, nil
	}
	if !q.s.flag(bucketKey(owner, bucket)) {
		return nil, errf(ErrNotFound, "bucket %q", bucket)
	}
	max := MaxPage
	if m := v.Get("max"); m != "" {
		n, err := strconv.Atoi(m)
		if err != nil || n < 0 {
			return nil, errf(ErrInvalid, "max=%q", m)
		}
		max = min(n, MaxPage)
	}
	return listObjects(q.s, owner, bucket, v.Get("prefix"), v.Get("delim"), v.Get("start"), max), nil
}
