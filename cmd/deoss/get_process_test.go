package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/deoss/deoss/internal/auth"
	"github.com/deoss/deoss/internal/types"
)

// fakeGateway serves one file's metadata and bytes (with Range) and can stall
// a download after a number of bytes, until its client goes away.
type fakeGateway struct {
	fid     types.FID
	data    []byte
	stallAt int // bytes of a download from 0 sent before it stalls; 0: never

	mu     sync.Mutex
	starts []int64 // the first byte of each download request
}

func (f *fakeGateway) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case "/version": // the account the client signs for
		json.NewEncoder(w).Encode(map[string]any{"version": "fake", "account": types.Address{0xfa}})
	case "/file/metadata/" + f.fid.String():
		json.NewEncoder(w).Encode(map[string]any{"fid": f.fid, "version": 1, "size": len(f.data)})
	case "/file/download/" + f.fid.String():
		var from int64
		if rg := r.Header.Get("Range"); rg != "" {
			from, _ = strconv.ParseInt(strings.TrimSuffix(strings.TrimPrefix(rg, "bytes="), "-"), 10, 64)
			w.Header().Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", from, len(f.data)-1, len(f.data)))
			w.Header().Set("Content-Length", fmt.Sprint(int64(len(f.data))-from))
			w.WriteHeader(http.StatusPartialContent)
		} else {
			w.Header().Set("Content-Length", fmt.Sprint(len(f.data)))
		}
		f.mu.Lock()
		f.starts = append(f.starts, from)
		f.mu.Unlock()
		if from == 0 && f.stallAt > 0 {
			w.Write(f.data[:f.stallAt])
			w.(http.Flusher).Flush()
			<-r.Context().Done()
			return
		}
		w.Write(f.data[from:])
	default:
		http.NotFound(w, r)
	}
}

// TestGetKilledHalfway: a `deoss get` killed in the middle of a download
// leaves the existing output whole; run again, it continues from the last
// synced byte of its partial file and ends with the right bytes.
func TestGetKilledHalfway(t *testing.T) {
	dir := t.TempDir()
	data := make([]byte, 64<<20)
	rand.NewChaCha8([32]byte{7}).Read(data)
	gw := &fakeGateway{fid: types.FID(types.Sum(data)), data: data, stallAt: 40 << 20}
	srv := httptest.NewServer(gw)
	defer srv.Close()
	k, err := auth.Generate()
	if err != nil {
		t.Fatal(err)
	}
	if err := auth.Save(filepath.Join(dir, "key.json"), k, nil); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "client.yaml")
	os.WriteFile(cfg, []byte("gateway: "+srv.URL+"\nkey: key.json\n"), 0o600)
	out := filepath.Join(dir, "backup.tar")
	old := []byte("yesterday's backup, which must stay whole until today's is complete")
	os.WriteFile(out, old, 0o600)
	env := []string{"HOME=" + dir, "DEOSS_CONFIG=" + cfg}

	cmd := exec.Command(deossBin, "get", gw.fid.String(), "-o", out)
	cmd.Env = append(os.Environ(), env...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// The server stalls after 40 MiB: the client syncs at 16 and 32 MiB.
	rec := out + ".deoss-partial.json"
	deadline := time.Now().Add(2 * time.Minute)
	var synced int64
	for synced < 32<<20 {
		var r struct{ Synced int64 }
		if b, err := os.ReadFile(rec); err == nil && json.Unmarshal(b, &r) == nil {
			synced = r.Synced
		}
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			t.Fatalf("the partial record never reached 32 MiB (%d): %s", synced, stderr.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	cmd.Process.Kill()
	cmd.Wait()
	var last struct{ Synced int64 }
	if b, err := os.ReadFile(rec); err != nil || json.Unmarshal(b, &last) != nil || last.Synced < 32<<20 {
		t.Fatalf("record after the kill: %v %+v", err, last)
	}
	if got, _ := os.ReadFile(out); !bytes.Equal(got, old) {
		t.Fatalf("the killed get changed %s (%d bytes)", out, len(got))
	}

	if o, code := cli(t, env, "get", gw.fid.String(), "-o", out); code != 0 {
		t.Fatalf("second get: exit %d %s", code, o)
	}
	if got, _ := os.ReadFile(out); !bytes.Equal(got, data) {
		t.Fatalf("after the resumed get %s differs (%d bytes)", out, len(got))
	}
	gw.mu.Lock()
	starts := gw.starts
	gw.mu.Unlock()
	if len(starts) != 2 || starts[0] != 0 || starts[1] != last.Synced {
		t.Fatalf("downloads started at %v, want [0 %d]: the second get must continue from the synced bytes", starts, last.Synced)
	}
	for _, p := range []string{out + ".deoss-partial", rec} {
		if _, err := os.Stat(p); !os.IsNotExist(err) {
			t.Errorf("%s left behind: %v", p, err)
		}
	}
}
