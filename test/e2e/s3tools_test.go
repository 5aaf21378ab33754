package e2e

import (
	"bytes"
	"crypto/rand"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The real S3 tools people back up and sync with, as Debian ships them
// (.ci/run installs them and sets DEOSS_S3_TOOLS=require; elsewhere a
// missing tool skips its part).

type s3Tools struct {
	t        *testing.T
	e        *s3Env
	endpoint string
	home     string
	env      []string
}

func newS3Tools(t *testing.T) *s3Tools {
	e := startS3(t, 1)
	home := t.TempDir()
	st := &s3Tools{t: t, e: e, endpoint: e.n.Gateways[0].S3URL, home: home}
	// A clean environment: a machine's AWS_CA_BUNDLE and the like would
	// change how the tools connect.
	st.env = append([]string{"PATH=" + os.Getenv("PATH"), "LANG=C.UTF-8"}, "HOME="+home, "AWS_ACCESS_KEY_ID="+e.access, "AWS_SECRET_ACCESS_KEY="+e.secret,
		"AWS_DEFAULT_REGION=us-east-1", "AWS_CONFIG_FILE="+filepath.Join(home, "aws-config"), "AWS_SHARED_CREDENTIALS_FILE="+filepath.Join(home, "aws-creds"),
		"AWS_PAGER=")
	return st
}

// tool finds a tool, or skips (fails, when CI requires the tools).
func (st *s3Tools) tool(name string) string {
	st.t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("DEOSS_S3_TOOLS") == "require" {
			st.t.Fatalf("%s is not installed (.ci/run installs it)", name)
		}
		st.t.Skipf("%s is not installed", name)
	}
	return p
}

// run runs a tool and returns its output; a failure fails the test.
func (st *s3Tools) run(env []string, name string, args ...string) string {
	st.t.Helper()
	cmd := exec.Command(st.tool(name), args...)
	cmd.Env = append(append([]string(nil), st.env...), env...)
	cmd.Dir = st.home
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	start := time.Now()
	err := cmd.Run()
	if err != nil {
		st.t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out.String())
	}
	st.t.Logf("%s %s: %s", name, strings.Join(args, " "), time.Since(start).Round(time.Millisecond))
	return out.String()
}

// tree writes a folder of files of assorted sizes, one in a subfolder.
func tree(t *testing.T, dir string) {
	t.Helper()
	for i, size := range []int{0, 1, 1000, 64 << 10, 1 << 20, 3<<20 + 7} {
		sub := dir
		if i%2 == 1 {
			sub = filepath.Join(dir, "sub")
		}
		if err := os.MkdirAll(sub, 0o755); err != nil {
			t.Fatal(err)
		}
		b := make([]byte, size)
		rand.Read(b)
		if err := os.WriteFile(filepath.Join(sub, fmt.Sprintf("file-%d.bin", i)), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func sameTrees(t *testing.T, a, b string) {
	t.Helper()
	n := 0
	err := filepath.Walk(a, func(p string, info os.FileInfo, err error) error {
		if err != nil || info.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(a, p)
		want, _ := os.ReadFile(p)
		got, err := os.ReadFile(filepath.Join(b, rel))
		if err != nil || !bytes.Equal(got, want) {
			return fmt.Errorf("%s differs: %v", rel, err)
		}
		n++
		return nil
	})
	if err != nil || n == 0 {
		t.Fatalf("trees %s and %s: %v (%d files)", a, b, err, n)
	}
}

func TestS3Tools(t *testing.T) {
	st := newS3Tools(t)
	src := filepath.Join(st.home, "src")
	tree(t, src)

	t.Run("aws", func(t *testing.T) {
		st.t = t
		aws := func(args ...string) string {
			return st.run(nil, "aws", append([]string{"--endpoint-url", st.endpoint}, args...)...)
		}
		aws("s3", "mb", "s3://awscli")
		big := filepath.Join(st.home, "big.bin")
		b := make([]byte, 100<<20) // multipart: aws cuts it in 8 MiB parts
		rand.Read(b)
		if err := os.WriteFile(big, b, 0o644); err != nil {
			t.Fatal(err)
		}
		aws("s3", "cp", "--only-show-errors", big, "s3://awscli/big.bin")
		aws("s3", "cp", "--only-show-errors", "s3://awscli/big.bin", big+".back")
		if back, _ := os.ReadFile(big + ".back"); !bytes.Equal(back, b) {
			t.Fatal("aws s3 cp: the 100 MiB file came back different")
		}
		if ls := aws("s3", "ls", "s3://awscli/"); !strings.Contains(ls, "104857600 big.bin") {
			t.Fatalf("aws s3 ls: %s", ls)
		}
		if out := aws("s3", "sync", "--only-show-errors", src, "s3://awscli/tree/"); out != "" {
			t.Fatalf("first sync: %s", out)
		}
		// The second sync finds nothing to do (sizes and times match).
		if out := aws("s3", "sync", src, "s3://awscli/tree/"); strings.Contains(out, "upload:") {
			t.Fatalf("the second sync uploaded again:\n%s", out)
		}
		down := filepath.Join(st.home, "aws-down")
		aws("s3", "sync", "--only-show-errors", "s3://awscli/tree/", down)
		sameTrees(t, src, down)
		aws("s3", "rm", "--only-show-errors", "--recursive", "s3://awscli/")
		if ls := aws("s3", "ls", "--recursive", "s3://awscli/"); strings.TrimSpace(ls) != "" {
			t.Fatalf("after rm: %s", ls)
		}
	})

	t.Run("s3cmd", func(t *testing.T) {
		st.t = t
		host := strings.TrimPrefix(st.endpoint, "http://")
		cfg := filepath.Join(st.home, "s3cmd.cfg")
		os.WriteFile(cfg, []byte(fmt.Sprintf("[default]\naccess_key = %s\nsecret_key = %s\nhost_base = %s\nhost_bucket = %s\nuse_https = False\nbucket_location = us-east-1\nsignature_v2 = False\n",
			st.e.access, st.e.secret, host, host)), 0o600)
		s3cmd := func(args ...string) string { return st.run(nil, "s3cmd", append([]string{"-c", cfg}, args...)...) }
		s3cmd("mb", "s3://s3cmd")
		f := filepath.Join(src, "sub", "file-5.bin")
		s3cmd("put", f, "s3://s3cmd/dir/file-5.bin")
		back := filepath.Join(st.home, "s3cmd-back")
		s3cmd("get", "s3://s3cmd/dir/file-5.bin", back)
		want, _ := os.ReadFile(f)
		if got, _ := os.ReadFile(back); !bytes.Equal(got, want) {
			t.Fatal("s3cmd get: different bytes")
		}
		if ls := s3cmd("ls", "s3://s3cmd/dir/"); !strings.Contains(ls, "s3://s3cmd/dir/file-5.bin") {
			t.Fatalf("s3cmd ls: %s", ls)
		}
		s3cmd("del", "s3://s3cmd/dir/file-5.bin")
		if ls := s3cmd("ls", "s3://s3cmd/dir/"); strings.Contains(ls, "file-5.bin") {
			t.Fatalf("after del: %s", ls)
		}
	})

	t.Run("rclone", func(t *testing.T) {
		st.t = t
		env := []string{"RCLONE_CONFIG=" + filepath.Join(st.home, "rclone.conf"), "RCLONE_CONFIG_DEOSS_TYPE=s3", "RCLONE_CONFIG_DEOSS_PROVIDER=Other",
			"RCLONE_CONFIG_DEOSS_ACCESS_KEY_ID=" + st.e.access, "RCLONE_CONFIG_DEOSS_SECRET_ACCESS_KEY=" + st.e.secret,
			"RCLONE_CONFIG_DEOSS_ENDPOINT=" + st.endpoint, "RCLONE_CONFIG_DEOSS_REGION=us-east-1"}
		st.run(env, "rclone", "mkdir", "deoss:rclone")
		st.run(env, "rclone", "copy", src, "deoss:rclone/tree")
		// check compares sizes and MD5s: the ETags are the bodies' MD5s.
		st.run(env, "rclone", "check", src, "deoss:rclone/tree")
	})

	t.Run("restic", func(t *testing.T) {
		st.t = t
		env := []string{"RESTIC_REPOSITORY=s3:" + st.endpoint + "/restic", "RESTIC_PASSWORD=correct horse battery staple",
			"RESTIC_CACHE_DIR=" + filepath.Join(st.home, "restic-cache")}
		st.run(env, "restic", "init")
		st.run(env, "restic", "backup", "--host", "e2e", src)
		st.run(env, "restic", "check", "--read-data")
		out := filepath.Join(st.home, "restic-out")
		st.run(env, "restic", "restore", "latest", "--target", out)
		sameTrees(t, src, filepath.Join(out, src))
	})
}
