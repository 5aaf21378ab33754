package gateway

import (
	"errors"
	"log/slog"
	"testing"

	"github.com/deoss/deoss/internal/auth"
)

// A gateway's key can be sealed: without its passphrase the gateway does
// not start (and nothing in the home gives the key, nor the key-encryption
// key of sessions that derives from it); with it, it does.
func TestSealedGatewayKey(t *testing.T) {
	home := t.TempDir()
	k, _ := auth.Generate()
	if err := auth.Save(KeyPath(home), k, []byte("gateway passphrase")); err != nil {
		t.Fatal(err)
	}
	cfg := DefaultConfig()
	if _, err := NewGateway(home, slog.New(slog.DiscardHandler), WithConfig(&cfg)); !errors.Is(err, auth.ErrPassphraseRequired) {
		t.Fatalf("sealed key without a passphrase: %v", err)
	}
	if _, err := NewGateway(home, slog.New(slog.DiscardHandler), WithConfig(&cfg), WithPassphrase([]byte("wrong"))); !errors.Is(err, auth.ErrWrongPassphrase) {
		t.Fatalf("wrong passphrase: %v", err)
	}
	g, err := NewGateway(home, slog.New(slog.DiscardHandler), WithConfig(&cfg), WithPassphrase([]byte("gateway passphrase")))
	if err != nil || g.Address() != k.Address() {
		t.Fatalf("with the passphrase: %v", err)
	}
}
