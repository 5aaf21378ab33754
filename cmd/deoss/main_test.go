package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

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
