package testutil

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// BuildDeoss builds the deoss command (pkg: the path of cmd/deoss from the
// caller's folder) into a temporary folder, for a TestMain; remove the
// folder of the returned binary when done.
func BuildDeoss(pkg string) (string, error) {
	dir, err := os.MkdirTemp("", "deoss-bin")
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "deoss")
	if out, err := exec.Command("go", "build", "-o", bin, pkg).CombinedOutput(); err != nil {
		os.RemoveAll(dir)
		return "", fmt.Errorf("build deoss: %v\n%s", err, out)
	}
	return bin, nil
}

// IsolateHome points HOME (and so ~/.deoss) at a folder under dir for the
// processes a test package starts, and clears the client's environment
// (DEOSS_CONFIG, DEOSS_KEY, ...); the returned function restores them.
func IsolateHome(dir string) (restore func()) {
	home := filepath.Join(dir, "home")
	os.MkdirAll(home, 0o700)
	saved := map[string]string{}
	for _, v := range []string{"HOME", "DEOSS_CONFIG", "DEOSS_KEY", "DEOSS_CHAIN", "DEOSS_GATEWAY", "DEOSS_TERRITORY"} {
		saved[v] = os.Getenv(v)
		os.Unsetenv(v)
	}
	os.Setenv("HOME", home)
	return func() {
		for v, val := range saved {
			os.Setenv(v, val)
		}
	}
}

// Run runs bin to its end with extra environment variables and returns its
// standard output and exit code; a failure's standard error is logged.
func Run(t testing.TB, bin string, env []string, a ...string) (string, int) {
	t.Helper()
	cmd := exec.Command(bin, a...)
	cmd.Env = append(os.Environ(), env...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("%s %v: %v", filepath.Base(bin), a, err)
	}
	if code != 0 {
		t.Logf("%s %s: exit %d: %s", filepath.Base(bin), strings.Join(a, " "), code, strings.TrimSpace(errb.String()))
	}
	return out.String(), code
}

// Proc is a daemon process that a test kills, freezes and restarts. Its
// output goes to dir/name.log, each run after a header line.
type Proc struct {
	t    testing.TB
	bin  string
	name string
	dir  string
	args []string
	env  []string
	mu   sync.Mutex
	cmd  *exec.Cmd
	log  *os.File
	runs int
}

// StartProc starts bin with args (and extra environment variables); the
// test's end kills it.
func StartProc(t testing.TB, bin, dir, name string, env []string, a ...string) *Proc {
	t.Helper()
	p := &Proc{t: t, bin: bin, name: name, dir: dir, args: a, env: env}
	p.Restart()
	t.Cleanup(p.Kill)
	return p
}

// Dir is the folder of the process's log.
func (p *Proc) Dir() string { return p.dir }

// SetEnv sets the extra environment variables of the next Restart.
func (p *Proc) SetEnv(env ...string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.env = env
}

// Restart starts the process (again) with the same arguments.
func (p *Proc) Restart() {
	p.mu.Lock()
	defer p.mu.Unlock()
	lf, err := os.OpenFile(filepath.Join(p.dir, p.name+".log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		p.t.Fatal(err)
	}
	fmt.Fprintf(lf, "=== run %d: %s %s\n", p.runs, filepath.Base(p.bin), strings.Join(p.args, " "))
	p.runs++
	cmd := exec.Command(p.bin, p.args...)
	cmd.Env = append(os.Environ(), p.env...)
	cmd.Stdout, cmd.Stderr = lf, lf
	if err := cmd.Start(); err != nil {
		p.t.Fatal(err)
	}
	p.cmd, p.log = cmd, lf
}

// Kill sends SIGKILL and waits for the end.
func (p *Proc) Kill() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd != nil && p.cmd.ProcessState == nil {
		_ = p.cmd.Process.Signal(syscall.SIGCONT) // a stopped process dies only once resumed
		_ = p.cmd.Process.Signal(syscall.SIGKILL)
		_ = p.cmd.Wait()
		p.log.Close()
	}
}

// Alive reports whether the current run has not ended.
func (p *Proc) Alive() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.cmd.ProcessState == nil
}

// Signal sends a signal to the current run.
func (p *Proc) Signal(s os.Signal) { _ = p.cmd.Process.Signal(s) }

// Wait waits for the process to end by itself and returns its exit code.
func (p *Proc) Wait() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	err := p.cmd.Wait()
	p.log.Close()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode()
	}
	return 0
}

// Stop freezes the process (SIGSTOP); Cont resumes it.
func (p *Proc) Stop() { p.Signal(syscall.SIGSTOP) }

// Cont resumes a stopped process.
func (p *Proc) Cont() { p.Signal(syscall.SIGCONT) }

// PeakRSS is the current run's peak resident set (VmHWM), in bytes.
func (p *Proc) PeakRSS() int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.cmd.Process.Pid))
	if err != nil {
		return -1
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			var kb int64
			fmt.Sscanf(strings.TrimSpace(v), "%d", &kb)
			return kb << 10
		}
	}
	return -1
}

// WaitHTTP waits up to a minute for url to answer 200.
func WaitHTTP(t testing.TB, url string) { t.Helper(); WaitHTTPWith(t, http.DefaultClient, url) }

// WaitHTTPWith is WaitHTTP through hc (an https client, say).
func WaitHTTPWith(t testing.TB, hc *http.Client, url string) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		if r, err := hc.Get(url); err == nil {
			r.Body.Close()
			if r.StatusCode == 200 {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s never answered", url)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Processes is a devnet.Runner that starts every part of a network as a
// deoss process of its own (bin), logged to Dir/<name>.log: validator,
// validator1, ..., node00, ..., gateway0, .... NodeArgs adds arguments to
// node i's `deoss node run` (a fault, say).
type Processes struct {
	T        testing.TB
	Bin, Dir string
	NodeArgs func(i int) []string

	Validators, Nodes, Gateways []*Proc // by index, as started
}

func (p *Processes) put(list *[]*Proc, i int, pr *Proc) {
	for len(*list) <= i {
		*list = append(*list, nil)
	}
	(*list)[i] = pr
}

// Validator starts `deoss chain start` for validator i.
func (p *Processes) Validator(_ context.Context, i int, home string) error {
	name := "validator"
	if i > 0 {
		name = fmt.Sprintf("validator%d", i)
	}
	p.put(&p.Validators, i, StartProc(p.T, p.Bin, p.Dir, name, nil, "chain", "start", "--home", home, "--log-level", "error"))
	return nil
}

// Node starts `deoss node run` for node i.
func (p *Processes) Node(_ context.Context, i int, home string) error {
	a := []string{"node", "run", "--home", home, "--log-level", "warn"}
	if p.NodeArgs != nil {
		a = append(a, p.NodeArgs(i)...)
	}
	p.put(&p.Nodes, i, StartProc(p.T, p.Bin, p.Dir, fmt.Sprintf("node%02d", i), nil, a...))
	return nil
}

// Gateway starts `deoss gateway run` for gateway i.
func (p *Processes) Gateway(_ context.Context, i int, home string) error {
	p.put(&p.Gateways, i, StartProc(p.T, p.Bin, p.Dir, fmt.Sprintf("gateway%d", i), nil, "gateway", "run", "--home", home, "--log-level", "info"))
	return nil
}
