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

	"github.com/deoss/deoss/internal/node/store"
	"github.com/deoss/deoss/internal/node/store/storetest"
	"github.com/deoss/deoss/internal/types"
)

const crashEnv = "DEOSS_STORE_CRASH_ROOT"

// crashBytes is the fragment the crash test writes.
func crashBytes() ([]byte, types.Hash) {
	b := bytes.Repeat([]byte("crash"), storetest.MaxSize/5)
	return b, sha256.Sum256(b)
}

// TestCrashDuringPut kills a process in the middle of a Put (half the bytes
// written to its temporary file) and checks that after reopening nothing of
// the fragment is visible and it can be stored again.
func TestCrashDuringPut(t *testing.T) {
	if root := os.Getenv(crashEnv); root != "" {
		crashChild(root) // never returns
	}
	root := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run", "^TestCrashDuringPut$")
	cmd.Env = append(os.Environ(), crashEnv+"="+root)
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
	b, h := crashBytes()
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
	if err := d.Put(context.Background(), ref, store.V1(h), bytes.NewReader(b)); err != nil {
		t.Fatal(err)
	}
	f, err := d.Open(context.Background(), h)
	if err != nil || f.Size() != int64(len(b)) {
		t.Fatalf("after re-store: %v", err)
	}
	f.Close()
}

// crashChild stores the crash fragment from a reader that stops halfway and
// waits to be killed.
func crashChild(root string) {
	d, err := store.OpenDisk(root, storetest.Capacity, storetest.MaxSize)
	if err != nil {
		os.Exit(2)
	}
	b, h := crashBytes()
	r := io.MultiReader(bytes.NewReader(b[:len(b)/2]), stall{})
	_ = d.Put(context.Background(), store.Ref{FID: types.FID{7}}, store.V1(h), r)
	os.Exit(3) // not reached: stall blocks until the kill
}

type stall struct{}

func (stall) Read([]byte) (int, error) { select {} }
