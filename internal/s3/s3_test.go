package s3

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/deoss/deoss/internal/gateway/upload"
)

func TestParseRange(t *testing.T) {
	cases := []struct {
		h          string
		size       int64
		off, n     int64
		partial    bool
		wantErrStr string
	}{
		{"", 100, 0, 100, false, ""},
		{"bytes=0-9", 100, 0, 10, true, ""},
		{"bytes=90-", 100, 90, 10, true, ""},
		{"bytes=90-500", 100, 90, 10, true, ""},
		{"bytes=-10", 100, 90, 10, true, ""},
		{"bytes=-500", 100, 0, 100, true, ""},
		{"bytes=100-", 100, 0, 0, true, "InvalidRange"},
		{"bytes=-0", 100, 0, 0, true, "InvalidRange"},
		{"bytes=0-", 0, 0, 0, true, "InvalidRange"},
		{"bytes=5-2", 100, 0, 100, false, ""},     // malformed: ignored, as S3
		{"bytes=0-1,5-6", 100, 0, 100, false, ""}, // several: the whole object
		{"items=0-1", 100, 0, 100, false, ""},
		{"bytes=x-1", 100, 0, 100, false, ""},
	}
	for _, c := range cases {
		off, n, partial, err := parseRange(c.h, c.size)
		got := ""
		if err != nil {
			got = err.(*Error).Code
		}
		if got != c.wantErrStr || err == nil && (off != c.off || n != c.n || partial != c.partial) {
			t.Errorf("%q of %d: %d+%d partial=%v err=%v", c.h, c.size, off, n, partial, err)
		}
	}
}

func TestPreconditions(t *testing.T) {
	mod := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	h := func(kv ...string) http.Header {
		out := http.Header{}
		for i := 0; i < len(kv); i += 2 {
			out.Set(kv[i], kv[i+1])
		}
		return out
	}
	before, after := mod.Add(-time.Hour).Format(http.TimeFormat), mod.Add(time.Hour).Format(http.TimeFormat)
	cases := []struct {
		h    http.Header
		want int
	}{
		{h(), 0},
		{h("If-Match", `"abc"`), 0},
		{h("If-Match", `"x", "abc"`), 0},
		{h("If-Match", "*"), 0},
		{h("If-Match", `"x"`), 412},
		{h("If-Unmodified-Since", before), 412},
		{h("If-Unmodified-Since", after), 0},
		{h("If-Match", `"abc"`, "If-Unmodified-Since", before), 0}, // If-Match wins
		{h("If-None-Match", `"abc"`), 304},
		{h("If-None-Match", `W/"abc"`), 304},
		{h("If-None-Match", `"x"`), 0},
		{h("If-Modified-Since", after), 304},
		{h("If-Modified-Since", before), 0},
		{h("If-None-Match", `"x"`, "If-Modified-Since", after), 0}, // If-None-Match wins
	}
	for i, c := range cases {
		if st, _ := preconditions(c.h, "abc", mod); st != c.want {
			t.Errorf("case %d %v: %d, want %d", i, c.h, st, c.want)
		}
	}
}

func TestS3Escape(t *testing.T) {
	if got := s3Escape("a b/é+%~_.-x\n"); got != "a%20b/%C3%A9%2B%25~_.-x%0A" {
		t.Fatalf("escaped: %s", got)
	}
}

func TestStoredHeaders(t *testing.T) {
	h := http.Header{}
	h.Set("Content-Type", "text/plain")
	h.Set("Content-Encoding", "aws-chunked,gzip")
	h.Set("X-Amz-Meta-Color", "blue")
	h.Set("Authorization", "secret things")
	h.Set("X-Amz-Date", "x")
	got, err := storedHeaders(h)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, kv := range got {
		names = append(names, kv.Name+"="+kv.Value)
	}
	if strings.Join(names, ";") != "content-encoding=gzip;content-type=text/plain;x-amz-meta-color=blue" {
		t.Fatalf("stored: %v", names)
	}
	h.Set("X-Amz-Meta-Big", strings.Repeat("m", MaxUserMeta))
	if _, err := storedHeaders(h); err == nil || err.(*Error).Code != "MetadataTooLarge" {
		t.Fatalf("large metadata: %v", err)
	}
	h = http.Header{"X-Amz-Server-Side-Encryption": {"AES256"}}
	if _, err := storedHeaders(h); err == nil || err.(*Error).Code != "NotImplemented" {
		t.Fatalf("SSE: %v", err)
	}
}

func TestFileNameAndETag(t *testing.T) {
	for key, want := range map[string]string{"a/b/c.txt": "c.txt", "dir/": "dir", "/": "object", "..": "object", "x\x01y": "object"} {
		if got := fileName(key); got != want {
			t.Errorf("fileName(%q) = %q, want %q", key, got, want)
		}
	}
	// MD5 of the parts' MD5s, then -N (the value from Python's hashlib, not this code).
	parts := []upload.Part{{MD5: "d41d8cd98f00b204e9800998ecf8427e"}, {MD5: "d41d8cd98f00b204e9800998ecf8427e"}}
	if got := completeETag(parts); got != "5873dd45edd01f09c1ef2e7819369e8e-2" {
		t.Fatalf("etag %s", got)
	}
}

func TestRoute(t *testing.T) {
	cases := map[string][2]string{
		"/":                     {"", ""},
		"/b":                    {"b", ""},
		"/b/":                   {"b", ""},
		"/b/a//c/":              {"b", "a//c/"},
		"/b/a%2Fb%20c+d":        {"b", "a/b c+d"},
		"/b/..%2F..%2Fetc":      {"b", "../../etc"},
		"/b/k?uploads":          {"b", "k"},
		"/b/%E2%82%AC?x=%2F&y=": {"b", "€"},
	}
	for uri, want := range cases {
		r := &http.Request{RequestURI: uri}
		b, k, err := route(r)
		if err != nil || b != want[0] || k != want[1] {
			t.Errorf("%s: %q %q %v", uri, b, k, err)
		}
	}
	if _, _, err := route(&http.Request{RequestURI: "/b/%zz"}); err == nil {
		t.Error("a bad escape routed")
	}
}
