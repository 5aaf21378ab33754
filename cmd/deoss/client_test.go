package main

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/deoss/deoss/sdk"
)

func TestProgressLine(t *testing.T) {
	start := time.Unix(1000, 0)
	p := sdk.Progress{Done: 30 << 20, Total: 100 << 20, Resumed: 10 << 20, Started: start}
	line := progressLine("put f", p, start.Add(2*time.Second))
	for _, want := range []string{"put f [", " 30%", "30.0 MiB/100.0 MiB", "10.0 MiB/s", "ETA 7s"} {
		if !strings.Contains(line, want) {
			t.Errorf("%q lacks %q", line, want)
		}
	}
	// Nothing moved yet: no rate, no ETA; an empty file is complete.
	if l := progressLine("x", sdk.Progress{Total: 10, Started: start}, start); !strings.Contains(l, "ETA --") {
		t.Errorf("%q", l)
	}
	if l := progressLine("x", sdk.Progress{Started: start}, start); !strings.Contains(l, "100%") {
		t.Errorf("%q", l)
	}
}

func TestClientConfig(t *testing.T) {
	dir := t.TempDir()
	if _, err := loadClientConfig(filepath.Join(dir, "none.yaml")); !errors.As(err, new(usageError)) {
		t.Fatalf("missing config: %v", err)
	}
	p := filepath.Join(dir, "client.yaml")
	os.WriteFile(p, []byte("gateway: http://127.0.0.1:1\nkey: user.json\n"), 0o600)
	c, err := loadClientConfig(p)
	if err != nil || c.Key != filepath.Join(dir, "user.json") || c.Territory != "home" {
		t.Fatalf("%+v %v", c, err)
	}
	os.WriteFile(p, []byte("gateway: [\n"), 0o600)
	if _, err := loadClientConfig(p); !errors.As(err, new(usageError)) {
		t.Fatalf("bad yaml: %v", err)
	}
	os.WriteFile(p, []byte("chain: x\n"), 0o600)
	if _, err := loadClientConfig(p); err == nil {
		t.Fatal("a config without gateway and key")
	}
	// Round trip.
	want := &clientConfig{Gateway: "http://g", Chain: "http://c", Key: "/k", Territory: "t"}
	if err := saveClientConfig(p, want); err != nil {
		t.Fatal(err)
	}
	if got, err := loadClientConfig(p); err != nil || *got != *want {
		t.Fatalf("%+v %v", got, err)
	}
}
