package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/deoss/deoss/internal/ledger"
	"github.com/deoss/deoss/internal/version"
)

func run(t *testing.T, args ...string) (string, error) {
	t.Helper()
	cmd := newRootCmd()
	var out bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&out)
	cmd.SetArgs(args)
	err := cmd.Execute()
	return out.String(), err
}

func TestVersion(t *testing.T) {
	out, err := run(t, "version")
	if err != nil || !strings.HasPrefix(out, "deoss "+version.Version) || !strings.Contains(out, "writes format v2, reads v1-v2") {
		t.Fatalf("version: %q %v", out, err)
	}
	out, err = run(t, "version", "--json")
	var info version.Info
	if err != nil || json.Unmarshal([]byte(out), &info) != nil || info.Version != version.Version || info.FormatVersion != 2 {
		t.Fatalf("version --json: %q %v", out, err)
	}
	if _, err := run(t, "version", "extra"); err == nil {
		t.Fatal("extra argument accepted")
	}
	if _, err := run(t, "no-such-command"); err == nil || exitCode(err) != 1 {
		t.Fatalf("unknown command: %v", err)
	}
}

// TestTestnetFaucetOffByDefault: `deoss chain testnet` writes a genesis
// without the faucet and with the network parameters unless --dev is given.
func TestTestnetFaucetOffByDefault(t *testing.T) {
	for _, c := range []struct {
		args []string
		dev  bool
		want ledger.Params
	}{{nil, false, ledger.NetworkParams()}, {[]string{"--dev"}, true, ledger.DefaultParams()}} {
		dir := t.TempDir()
		if out, err := run(t, append([]string{"chain", "testnet", "--dir", dir, "--base-port", "26900"}, c.args...)...); err != nil {
			t.Fatalf("testnet %v: %v %s", c.args, err, out)
		}
		b, err := os.ReadFile(filepath.Join(dir, "v0", "config", "genesis.json"))
		if err != nil {
			t.Fatal(err)
		}
		var doc struct {
			AppState ledger.Genesis `json:"app_state"`
		}
		if err := json.Unmarshal(b, &doc); err != nil {
			t.Fatal(err)
		}
		if doc.AppState.Dev != c.dev || doc.AppState.Params != c.want {
			t.Fatalf("testnet %v: dev %v, params %+v", c.args, doc.AppState.Dev, doc.AppState.Params)
		}
	}
}
