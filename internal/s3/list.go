package s3

import (
	"encoding/base64"
	"encoding/xml"
	"net/http"
	"sort"
	"strconv"
	"strings"

	"github.com/deoss/deoss/internal/ledger"
)

// listing is one page of a bucket's keys, merged from the chain's index
// and this gateway's journal.
type listing struct {
	objects   []ledger.Object
	prefixes  []string
	truncated bool
	next      string // the last entry: the next page starts after it
}

// list pages through a bucket: keys with prefix after start, rolled up at
// delim, at most max entries. The journal's entries in the page's range
// are laid over the chain's page: puts replace or add keys, deletes hide
// them (a rolled-up prefix whose every key is deleted here still shows
// until the chain takes the deletes).
func (s *Server) list(req *request, prefix, delim, start string, max int) (*listing, error) {
	// The journal first: a change published between the two reads is then
	// in the chain's answer (its client reads at least the height it
	// wrote), never in neither.
	ops, err := s.Queue.LatestKeys(req.owner, req.bucket, prefix)
	if err != nil {
		return nil, err
	}
	page, err := s.Chain.Objects(req.r.Context(), req.owner, req.bucket, prefix, delim, start, max)
	if err != nil {
		return nil, err
	}
	objs := map[string]ledger.Object{}
	for _, o := range page.Objects {
		objs[o.Key] = o
	}
	pfx := map[string]bool{}
	for _, p := range page.Prefixes {
		pfx[p] = true
	}
	for _, op := range ops {
		if op.Key <= start {
			continue
		}
		name, rolled := op.Key, false
		if delim != "" {
			if i := strings.Index(op.Key[len(prefix):], delim); i >= 0 {
				name, rolled = op.Key[:len(prefix)+i+len(delim)], true
			}
		}
		if name <= start || page.Truncated && name > page.Next {
			continue // before this page, or on a later one
		}
		switch {
		case rolled && !op.Delete:
			pfx[name] = true
		case rolled:
		case op.Delete:
			delete(objs, op.Key)
		default:
			objs[op.Key] = op.Object()
		}
	}
	type entry struct {
		name string
		obj  *ledger.Object
	}
	var all []entry
	for k := range objs {
		o := objs[k]
		all = append(all, entry{name: k, obj: &o})
	}
	for p := range pfx {
		all = append(all, entry{name: p})
	}
	sort.Slice(all, func(i, j int) bool { return all[i].name < all[j].name })
	out := &listing{truncated: page.Truncated}
	if len(all) > max {
		all, out.truncated = all[:max], true
	}
	for _, e := range all {
		if e.obj != nil {
			out.objects = append(out.objects, *e.obj)
		} else {
			out.prefixes = append(out.prefixes, e.name)
		}
	}
	if out.truncated {
		out.next = page.Next
		if len(all) > 0 && (out.next == "" || all[len(all)-1].name < out.next) {
			out.next = all[len(all)-1].name
		}
	}
	return out, nil
}

type listEntry struct {
	Key          string `xml:"Key"`
	LastModified string `xml:"LastModified"`
	ETag         string `xml:"ETag"`
	Size         uint64 `xml:"Size"`
	StorageClass string `xml:"StorageClass"`
	Owner        *owner `xml:"Owner,omitempty"`
}

type commonPrefix struct {
	Prefix string `xml:"Prefix"`
}

// s3Escape is S3's encoding-type=url: everything but unreserved characters
// and '/' percent-encoded (spaces as %20, which every client decodes).
func s3Escape(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || strings.IndexByte("-_.~/", c) >= 0 {
			b.WriteByte(c)
			continue
		}
		b.WriteString("%" + strings.ToUpper(strconv.FormatUint(uint64(c)>>4, 16)+strconv.FormatUint(uint64(c)&15, 16)))
	}
	return b.String()
}

func (s *Server) listObjects(req *request, v2 bool) error {
	if _, err := s.bucket(req); err != nil {
		return err
	}
	q := req.query
	prefix, delim := q.Get("prefix"), q.Get("delimiter")
	enc := func(s string) string { return s }
	switch et := q.Get("encoding-type"); et {
	case "":
	case "url":
		enc = s3Escape
	default:
		return s3err("InvalidArgument", "encoding-type %q: only url", et)
	}
	max := 1000
	if m := q.Get("max-keys"); m != "" {
		n, err := strconv.Atoi(m)
		if err != nil || n < 0 {
			return s3err("InvalidArgument", "max-keys %q", m)
		}
		max = min(n, 1000)
	}
	start := q.Get("marker")
	token := q.Get("continuation-token")
	if v2 {
		start = q.Get("start-after")
		if _, ok := q["continuation-token"]; ok {
			b, err := base64.RawURLEncoding.DecodeString(token)
			if err != nil || token == "" {
				return s3err("InvalidArgument", "the continuation token is not one this gateway gave")
			}
			start = string(b)
		}
	}
	var l *listing
	if max == 0 {
		l = &listing{}
	} else {
		var err error
		if l, err = s.list(req, prefix, delim, start, max); err != nil {
			return err
		}
	}
	var contents []listEntry
	for _, o := range l.objects {
		e := listEntry{Key: enc(o.Key), LastModified: isoTime(o.Modified), ETag: `"` + o.ETag + `"`, Size: o.Size, StorageClass: "STANDARD"}
		if !v2 || q.Get("fetch-owner") == "true" {
			ow := req.ownerXML()
			e.Owner = &ow
		}
		contents = append(contents, e)
	}
	var cps []commonPrefix
	for _, p := range l.prefixes {
		cps = append(cps, commonPrefix{Prefix: enc(p)})
	}
	encType := q.Get("encoding-type")
	if v2 {
		out := struct {
			XMLName      xml.Name       `xml:"ListBucketResult"`
			NS           string         `xml:"xmlns,attr"`
			Name         string         `xml:"Name"`
			Prefix       string         `xml:"Prefix"`
			Delimiter    string         `xml:"Delimiter,omitempty"`
			StartAfter   string         `xml:"StartAfter,omitempty"`
			Token        string         `xml:"ContinuationToken,omitempty"`
			NextToken    string         `xml:"NextContinuationToken,omitempty"`
			KeyCount     int            `xml:"KeyCount"`
			MaxKeys      int            `xml:"MaxKeys"`
			EncodingType string         `xml:"EncodingType,omitempty"`
			IsTruncated  bool           `xml:"IsTruncated"`
			Contents     []listEntry    `xml:"Contents"`
			Prefixes     []commonPrefix `xml:"CommonPrefixes"`
		}{NS: s3NS, Name: req.bucket, Prefix: enc(prefix), Delimiter: enc(delim), StartAfter: enc(q.Get("start-after")), Token: token,
			KeyCount: len(contents) + len(cps), MaxKeys: max, EncodingType: encType, IsTruncated: l.truncated, Contents: contents, Prefixes: cps}
		if l.truncated {
			out.NextToken = base64.RawURLEncoding.EncodeToString([]byte(l.next))
		}
		writeXML(req.w, http.StatusOK, out)
		return nil
	}
	out := struct {
		XMLName      xml.Name       `xml:"ListBucketResult"`
		NS           string         `xml:"xmlns,attr"`
		Name         string         `xml:"Name"`
		Prefix       string         `xml:"Prefix"`
		Marker       string         `xml:"Marker"`
		NextMarker   string         `xml:"NextMarker,omitempty"`
		Delimiter    string         `xml:"Delimiter,omitempty"`
		MaxKeys      int            `xml:"MaxKeys"`
		EncodingType string         `xml:"EncodingType,omitempty"`
		IsTruncated  bool           `xml:"IsTruncated"`
		Contents     []listEntry    `xml:"Contents"`
		Prefixes     []commonPrefix `xml:"CommonPrefixes"`
	}{NS: s3NS, Name: req.bucket, Prefix: enc(prefix), Marker: enc(start), Delimiter: enc(delim), MaxKeys: max, EncodingType: encType,
		IsTruncated: l.truncated, Contents: contents, Prefixes: cps}
	if l.truncated {
		out.NextMarker = enc(l.next) // S3 sends it with a delimiter; clients without one use the last key, the same
	}
	writeXML(req.w, http.StatusOK, out)
	return nil
}
