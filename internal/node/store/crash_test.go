package store_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/deoss/deoss/internal/codec"
	"github.com/deoss/deoss/internal/node/store"
	"github.com/deoss/deoss/internal/node/store/storetest"
	"github.com/deoss/deoss/internal/types"
)

const (
	crashEnv        = "DEOSS_STORE_CRASH_ROOT"
	crashVersionEnv = "DEOSS_STORE_CRASH_V2"
)

// crashBytes is the fragment the crash test writes, as v1 or v2 (with an
// outboard).
func crashBytes(v2 bool) ([]byte, store.Want) {
	b := bytes.Repeat([]byte("crash"), storetest.MaxSize/5)
	if v2 {
		b = b[:storetest.MaxSize/2]
		return b, store.Want{Hash: codec.Sum(types.FormatV2, b), Format: types.FormatV2, Size: int64(len(b))}
	}
	return b, store.V1(sha256.Sum256(b))
}

// TestCrashDuringPut kills a process in the middle of a Put (half the bytes
// written to its temporary file) and checks that after reopening nothing of
// the fragment is visible and it can be stored again.
func TestCrashDuringPut(t *testing.T) { testCrashDuringPut(t, false) }

// TestCrashDuringPutV2 is the same for a v2 fragment, whose outboard is
// built in the same pass.
func TestCrashDuringPutV2(t *testing.T) { testCrashDuringPut(t, true) }

func testCrashDuringPut(t *testing.T, v2 bool) {
	if root := os.Getenv(crashEnv); root != "" {
		crashChild(root, os.Getenv(crashVersionEnv) != "") // never returns
	}
	root := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run", "^"+t.Name()+"$")
	cmd.Env = append(os.Environ(), crashEnv+"="+root)
	if v2 {
		cmd.Env = append(cmd.Env, crashVersionEnv+"=1")
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// Wait until the child's temporary file holds bytes, then kill it.
	deadline := time.Now().Add(30 * time.Second)
	for {
		entries, _ := os.ReadDir(filepath.Join(root, "tmp"))
		if len(entries) > 0 {
			if st, err := os.Stat(filepath.Join(root, "tmp", entries[0].Name())); err == nil && st.Size() > 0 {
				break
			}
		}
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			t.Fatal("the child never started writing")
		}
		time.Sleep(5 * time.Millisecond)
	}
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()

	d := openDisk(t, root)
	defer d.Close()
	b, w := crashBytes(v2)
	h := w.Hash
	ref := store.Ref{FID: types.FID{7}}
	if _, err := d.Open(context.Background(), h); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("partial fragment visible: %v", err)
	}
	if _, err := d.Lookup(context.Background(), ref); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("ref of a partial fragment: %v", err)
	}
	if used, _ := d.Usage(); used != 0 {
		t.Fatalf("used %d", used)
	}
	if err := d.Put(context.Background(), ref, w, bytes.NewReader(b)); err != nil {
		t.Fatal(err)
	}
	f, err := d.Open(context.Background(), h)
	if err != nil || f.Size() != int64(len(b)) {
		t.Fatalf("after re-store: %v", err)
	}
	f.Close()
	if _, err := d.Outboard(context.Background(), h); v2 != (err == nil) {
		t.Fatalf("outboard after re-store: %v", err)
	}
}

// TestOrphanOutboardRemoved: an outboard whose fragment never reached the
// index (a crash between the two renames) is removed when the store opens.
func TestOrphanOutboardRemoved(t *testing.T) {
	root := t.TempDir()
	d := openDisk(t, root)
	d.Close()
	_, w := crashBytes(true)
	s := w.Hash.String()
	dir := filepath.Join(root, "frags", s[:2], s[2:4])
	os.MkdirAll(dir, 0o700)
	orphan := filepath.Join(dir, s+".obao")
	if err := os.WriteFile(orphan, []byte("outboard"), 0o600); err != nil {
		t.Fatal(err)
	}
	d = openDisk(t, root)
	defer d.Close()
	if _, err := os.Stat(orphan); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("orphan outboard kept: %v", err)
	}
	if _, err := d.Outboard(context.Background(), w.Hash); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("orphan outboard served: %v", err)
	}
}

// crashChild stores the crash fragment from a reader that stops halfway and
// waits to be killed.
func crashChild(root string, v2 bool) {
	d, err := store.OpenDisk(root, storetest.Capacity, storetest.MaxSize)
	if err != nil {
		os.Exit(2)
	}
	b, w := crashBytes(v2)
	r := io.MultiReader(bytes.NewReader(b[:len(b)/2]), stall{})
	_ = d.Put(context.Background(), store.Ref{FID: types.FID{7}}, w, r)
	os.Exit(3) // not reached: stall blocks until the kill
}

type stall struct{}

func (stall) Read([]byte) (int, error) { select {} }
