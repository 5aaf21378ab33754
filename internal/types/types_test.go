package types

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"
)

func TestParseHash(t *testing.T) {
	good := strings.Repeat("0123456789abcdef", 4)
	h, err := ParseHash(good)
	if err != nil {
		t.Fatal(err)
	}
	if h.String() != good {
		t.Fatalf("round trip: %s", h)
	}
	for _, bad := range []string{
		"", good[:63], good + "0", strings.ToUpper(good), good[:62] + "0g", good[:63] + "/", "../" + good[3:],
	} {
		if _, err := ParseHash(bad); !errors.Is(err, ErrMalformedHash) {
			t.Errorf("ParseHash(%q) = %v, want ErrMalformedHash", bad, err)
		}
		if _, err := ParseFID(bad); !errors.Is(err, ErrMalformedHash) {
			t.Errorf("ParseFID(%q) = %v, want ErrMalformedHash", bad, err)
		}
	}
}

func TestHashText(t *testing.T) {
	h := Sum([]byte("x"))
	b, _ := h.MarshalText()
	var g Hash
	if err := g.UnmarshalText(b); err != nil || g != h {
		t.Fatalf("got %v %v", g, err)
	}
	var f FID
	if err := f.UnmarshalText(b); err != nil || Hash(f) != h || f.String() != h.String() {
		t.Fatalf("fid %v %v", f, err)
	}
	if err := g.UnmarshalText([]byte("zz")); err == nil {
		t.Fatal("accepted zz")
	}
}

func TestSegments(t *testing.T) {
	p := ProfileV1
	cases := []struct {
		size uint64
		enc  Encryption
		want uint64
	}{
		{0, EncryptionNone, 0},
		{1, EncryptionNone, 1},
		{SegmentSize, EncryptionNone, 1},
		{SegmentSize + 1, EncryptionNone, 2},
		{SegmentSize - GCMOverhead, EncryptionAES256GCM, 1},
		{SegmentSize - GCMOverhead + 1, EncryptionAES256GCM, 2},
		{SegmentSize, EncryptionAES256GCM, 2},
		{1<<64 - 1, EncryptionNone, (1<<64-1)/SegmentSize + 1},
	}
	for _, c := range cases {
		if got := p.Segments(c.size, c.enc); got != c.want {
			t.Errorf("Segments(%d, %v) = %d, want %d", c.size, c.enc, got, c.want)
		}
	}
}

func TestLayoutValidate(t *testing.T) {
	ok := Layout{Version: FormatV1, Size: 10, Segments: make([]SegmentLayout, 1)}
	if err := ok.Validate(); err != nil {
		t.Fatal(err)
	}
	bad := []Layout{
		{Version: 2, Size: 10, Segments: make([]SegmentLayout, 1)},
		{Version: FormatV1, Size: 10, Segments: nil},
		{Version: FormatV1, Size: 0, Segments: make([]SegmentLayout, 1)},
		{Version: FormatV1, Encryption: 7, Size: 10, Segments: make([]SegmentLayout, 1)},
		{Version: FormatV1, Size: 10, Salt: make([]byte, SaltSize), Segments: make([]SegmentLayout, 1)},
		{Version: FormatV1, Encryption: EncryptionAES256GCM, Size: 10, Salt: make([]byte, 3), Segments: make([]SegmentLayout, 1)},
		{Version: FormatV1, Size: SegmentSize * (MaxSegments + 1), Segments: nil},
	}
	for i, l := range bad {
		if err := l.Validate(); !errors.Is(err, ErrInvalidLayout) {
			t.Errorf("case %d: %v, want ErrInvalidLayout", i, err)
		}
	}
}

func TestDurationJSON(t *testing.T) {
	b, err := json.Marshal(Duration(90 * time.Second))
	if err != nil || string(b) != `"1m30s"` {
		t.Fatalf("marshal: %s %v", b, err)
	}
	for in, want := range map[string]time.Duration{`"30s"`: 30 * time.Second, `30000000000`: 30 * time.Second, `"0s"`: 0} {
		var d Duration
		if err := json.Unmarshal([]byte(in), &d); err != nil || d.D() != want {
			t.Errorf("unmarshal %s: %v %v", in, d.D(), err)
		}
	}
	var d Duration
	if err := json.Unmarshal([]byte(`"soon"`), &d); err == nil {
		t.Error("a malformed duration was accepted")
	}
}
