package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/deoss/deoss/internal/chain"
	"github.com/deoss/deoss/internal/testutil"
)

// deossBin is the deoss binary built once for the process tests.
var deossBin string

func TestMain(m *testing.M) {
	bin, err := testutil.BuildDeoss(".")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	deossBin = bin
	// The commands must not read (or write) the ~/.deoss of whoever runs
	// the tests: a dev network there would become their configuration.
	restore := testutil.IsolateHome(filepath.Dir(bin))
	code := m.Run()
	restore()
	os.RemoveAll(filepath.Dir(bin))
	os.Exit(code)
}

// cli runs the deoss binary and returns its standard output and exit code.
func cli(t *testing.T, env []string, a ...string) (string, int) {
	t.Helper()
	return testutil.Run(t, deossBin, env, a...)
}

// startProc runs `deoss chain start` for a validator home.
func startProc(t *testing.T, home string) *testutil.Proc {
	t.Helper()
	return testutil.StartProc(t, deossBin, home, "process", nil, "chain", "start", "--home", home, "--log-level", "error")
}

func waitHeight(t *testing.T, c *chain.Client, above int64, within time.Duration) int64 {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		h, err := c.Height(ctx)
		cancel()
		if err == nil && h > above {
			return h
		}
		if time.Now().After(deadline) {
			t.Fatalf("height stayed at %d (want > %d): %v", h, above, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestFourValidatorProcesses(t *testing.T) {
	if testing.Short() {
		t.Skip("starts four validator processes")
	}
	dir := t.TempDir()
	base := testutil.FreePorts(t, 8)
	keyPath := filepath.Join(dir, "alice.json")
	env := []string{"DEOSS_KEY=" + keyPath, fmt.Sprintf("DEOSS_CHAIN=http://127.0.0.1:%d", base+1)}

	// A key, then a four-validator testnet funding it.
	addr, code := cli(t, env, "key", "new")
	addr = strings.TrimSpace(addr)
	if code != 0 || !strings.HasPrefix(addr, "deoss1") {
		t.Fatalf("key new: %q %d", addr, code)
	}
	if out, code := cli(t, env, "key", "show"); code != 0 || strings.TrimSpace(out) != addr {
		t.Fatalf("key show: %q", out)
	}
	if _, code := cli(t, env, "chain", "testnet", "--dev", "--validators", "4", "--dir", dir, "--base-port", fmt.Sprint(base),
		"--timeout-commit", "100ms", "--fund", addr+"=5000000"); code != 0 {
		t.Fatal("testnet")
	}
	procs := make([]*testutil.Proc, 4)
	clients := make([]*chain.Client, 4)
	for i := range procs {
		procs[i] = startProc(t, filepath.Join(dir, fmt.Sprintf("v%d", i)))
		c, err := chain.Dial(fmt.Sprintf("http://127.0.0.1:%d", base+2*i+1))
		if err != nil {
			t.Fatal(err)
		}
		clients[i] = c
	}
	h := waitHeight(t, clients[0], 1, 60*time.Second)

	// The client commands, through validator 0, with their exit codes.
	if out, code := cli(t, env, "territory", "buy", "home", "--gib", "2", "--days", "3"); code != 0 || !strings.HasPrefix(out, "ok:") {
		t.Fatalf("territory buy: %q %d", out, code)
	}
	if out, code := cli(t, env, "territory", "show", "home"); code != 0 || !strings.Contains(out, `"total_bytes": 2147483648`) {
		t.Fatalf("territory show: %q", out)
	}
	if _, code := cli(t, env, "territory", "show", "nope"); code != exitNotFound {
		t.Fatalf("missing territory: exit %d", code)
	}
	if _, code := cli(t, env, "territory", "buy", "home"); code != exitRefused {
		t.Fatalf("buying twice: exit %d", code)
	}
	if _, code := cli(t, env, "account", "faucet"); code != 0 {
		t.Fatal("faucet")
	}
	bob := chain.DevAccount("bob").Address().String()
	if _, code := cli(t, env, "account", "transfer", bob, "77"); code != 0 {
		t.Fatal("transfer")
	}
	if out, code := cli(t, env, "account", "balance", bob); code != 0 || !strings.Contains(out, `"balance": 77`) {
		t.Fatalf("balance: %q", out)
	}
	if _, code := cli(t, env, "account", "transfer", "deoss1nonsense", "1"); code != exitUsage {
		t.Fatalf("bad address: exit %d", code)
	}
	if _, code := cli(t, env, "account", "transfer", bob, "1", "--no-such-flag"); code != exitUsage {
		t.Fatalf("bad flag: exit %d", code)
	}
	if _, code := cli(t, append(env, "DEOSS_CHAIN=http://127.0.0.1:1"), "account", "balance"); code != exitUnavailable {
		t.Fatalf("no chain: exit %d", code)
	}

	// One validator killed: the other three still commit.
	procs[3].Kill()
	h = waitHeight(t, clients[0], h+3, 30*time.Second)
	if _, code := cli(t, env, "account", "transfer", bob, "1"); code != 0 {
		t.Fatal("transfer with 3 of 4")
	}
	// It restarts and catches up to the same app hash.
	procs[3].Restart()
	h = waitHeight(t, clients[0], h, 30*time.Second)
	waitHeight(t, clients[3], h, 60*time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	a0, err0 := clients[0].AppHashAt(ctx, h-1)
	a3, err3 := clients[3].AppHashAt(ctx, h-1)
	if err0 != nil || err3 != nil || !bytes.Equal(a0, a3) || len(a0) == 0 {
		t.Fatalf("app hash at %d: %x %v / %x %v", h-1, a0, err0, a3, err3)
	}

	// Two killed: 2 of 4 is not a quorum, no block commits.
	procs[2].Kill()
	procs[3].Kill()
	// Not a sleep and a look: wait until the two validators left have both
	// prevoted for the height they are trying (half of the voting power:
	// all there is, never the two thirds a commit needs), then check that
	// it was never committed.
	stuck := waitStuck(t, base+1)
	if h, _ := clients[0].Height(ctx); h >= stuck {
		t.Fatalf("committed height %d without a quorum", h)
	}
	stalled := stuck - 1
	// One returns: commits resume.
	procs[2].Restart()
	waitHeight(t, clients[0], stalled+2, 60*time.Second)
}

// waitStuck waits until the validator at rpcPort is stuck: at the same
// height, round and step in two reads in a row, with fewer than two thirds
// of the precommits of that round (with two of four validators, a commit
// can never come; nothing times out either, as no two thirds of anything
// arrive). It returns the height it is stuck at.
func waitStuck(t *testing.T, rpcPort int) int64 {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	var last string
	for {
		var cs struct {
			Result struct {
				RoundState struct {
					HRS   string `json:"height/round/step"`
					Votes []struct {
						Round      int    `json:"round"`
						Precommits string `json:"precommits_bit_array"`
					} `json:"height_vote_set"`
				} `json:"round_state"`
			} `json:"result"`
		}
		resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/consensus_state", rpcPort))
		if err == nil {
			err = json.NewDecoder(resp.Body).Decode(&cs)
			resp.Body.Close()
		}
		var h int64
		var r int
		if _, serr := fmt.Sscanf(cs.Result.RoundState.HRS, "%d/%d/", &h, &r); err == nil && serr == nil {
			for _, v := range cs.Result.RoundState.Votes {
				var voted, total int
				var frac float64
				if i := strings.LastIndexByte(v.Precommits, '}'); i >= 0 {
					fmt.Sscanf(v.Precommits[i+1:], " %d/%d = %f", &voted, &total, &frac)
				}
				if v.Round == r && total > 0 && 3*voted < 2*total {
					if last == cs.Result.RoundState.HRS {
						return h
					}
					last = cs.Result.RoundState.HRS
				}
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("the validators never got stuck on half the prevotes: %+v %v", cs.Result.RoundState, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
