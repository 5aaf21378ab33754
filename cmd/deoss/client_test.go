package main

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"

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
	if _, err := loadClientConfig(filepath.Join(dir, "none.yaml")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("missing config: %v", err)
	}
	p := filepath.Join(dir, "client.yaml")
	os.WriteFile(p, []byte("gateway: http://127.0.0.1:1\nkey: user.json\n"), 0o600)
	c, err := loadClientConfig(p)
	if err != nil || c.Key != filepath.Join(dir, "user.json") || c.Territory != "" {
		t.Fatalf("%+v %v", c, err)
	}
	os.WriteFile(p, []byte("gateway: [\n"), 0o600)
	if _, err := loadClientConfig(p); !errors.As(err, new(usageError)) {
		t.Fatalf("bad yaml: %v", err)
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

// TestResolveConfig: flag, then environment, then --config/DEOSS_CONFIG,
// then the dev network's client.yaml, then the default, value by value.
func TestResolveConfig(t *testing.T) {
	home := t.TempDir()
	t.Setenv("HOME", home)
	for _, v := range []string{"DEOSS_CONFIG", "DEOSS_CHAIN", "DEOSS_KEY", "DEOSS_GATEWAY", "DEOSS_TERRITORY"} {
		t.Setenv(v, "")
	}
	newCmd := func(args ...string) *cobra.Command {
		cmd := &cobra.Command{Use: "x", RunE: func(*cobra.Command, []string) error { return nil }}
		for _, f := range []string{"chain", "key", "gateway", "territory"} {
			cmd.Flags().String(f, "", "")
		}
		if err := cmd.ParseFlags(args); err != nil {
			t.Fatal(err)
		}
		return cmd
	}
	r, err := resolveConfig(newCmd(), "")
	if err != nil || r.Chain != (setting{defaultChain, "default"}) || r.Key.Value != filepath.Join(home, ".deoss", "key.json") || len(r.Files) != 0 {
		t.Fatalf("nothing set: %+v %v", r, err)
	}
	dev := filepath.Join(home, ".deoss", "dev", "client.yaml")
	os.MkdirAll(filepath.Dir(dev), 0o700)
	os.WriteFile(dev, []byte("gateway: http://dev-gw\nchain: http://dev-chain\nkey: user.json\nterritory: home\n"), 0o600)
	mine := filepath.Join(home, "mine.yaml")
	os.WriteFile(mine, []byte("chain: http://my-chain\n"), 0o600)
	r, err = resolveConfig(newCmd(), mine)
	if err != nil || r.Chain != (setting{"http://my-chain", mine}) || r.Gateway != (setting{"http://dev-gw", dev}) ||
		r.Key.Value != filepath.Join(filepath.Dir(dev), "user.json") || r.Territory != (setting{"home", dev}) {
		t.Fatalf("--config over the dev config: %+v %v", r, err)
	}
	t.Setenv("DEOSS_CONFIG", mine)
	t.Setenv("DEOSS_CHAIN", "http://env-chain")
	t.Setenv("DEOSS_TERRITORY", "work")
	r, err = resolveConfig(newCmd("--territory", "flagged"), "")
	if err != nil || r.Chain != (setting{"http://env-chain", "env DEOSS_CHAIN"}) || r.Territory != (setting{"flagged", "flag --territory"}) ||
		len(r.Files) != 2 || r.Files[0] != mine {
		t.Fatalf("env and flag: %+v %v", r, err)
	}
	if _, err := resolveConfig(newCmd(), filepath.Join(home, "none.yaml")); !errors.As(err, new(usageError)) {
		t.Fatalf("an explicit config that does not exist: %v", err)
	}
}
