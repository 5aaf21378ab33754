package scheduler

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/deoss/deoss/internal/fsutil"
	"github.com/deoss/deoss/internal/types"
)

// ErrNotEnoughNodes is returned (wrapped in *ShortError) when fewer
// candidates exist than columns to place.
var ErrNotEnoughNodes = errors.New("not enough eligible storage nodes")

// ShortError says how many candidates there were.
type ShortError struct{ Have, Need int }

func (e *ShortError) Error() string {
	return fmt.Sprintf("%v: %d eligible, %d needed", ErrNotEnoughNodes, e.Have, e.Need)
}

func (e *ShortError) Unwrap() error { return ErrNotEnoughNodes }

// Config is the strategy. Zero values take the defaults noted.
type Config struct {
	// Fixed, when not empty, is the only set of nodes used.
	Fixed []types.Address `json:"fixed,omitempty"`
	// Preferred nodes weigh PreferredBoost times more (default 4).
	Preferred      []types.Address `json:"preferred,omitempty"`
	PreferredBoost float64         `json:"preferred_boost,omitempty"`
	// Excluded nodes are never chosen.
	Excluded []types.Address `json:"excluded,omitempty"`
	// Failures within Window put a node in the cooldown pool (default 3 in
	// 10 minutes) for Cooldown (default 5 minutes), doubled on each return,
	// at most MaxCooldown (default 24 hours).
	Failures    int            `json:"failures,omitempty"`
	Window      types.Duration `json:"window,omitempty"`
	Cooldown    types.Duration `json:"cooldown,omitempty"`
	MaxCooldown types.Duration `json:"max_cooldown,omitempty"`
	// HalfLife is how fast old successes and failures fade (default 1 hour).
	HalfLife types.Duration `json:"half_life,omitempty"`
}

func (c *Config) defaults() {
	if c.PreferredBoost == 0 {
		c.PreferredBoost = 4
	}
	if c.Failures == 0 {
		c.Failures = 3
	}
	if c.Window == 0 {
		c.Window = types.Duration(10 * time.Minute)
	}
	if c.Cooldown == 0 {
		c.Cooldown = types.Duration(5 * time.Minute)
	}
	if c.MaxCooldown == 0 {
		c.MaxCooldown = types.Duration(24 * time.Hour)
	}
	if c.HalfLife == 0 {
		c.HalfLife = types.Duration(time.Hour)
	}
}

// Node is a storage node as the chain lists it.
type Node struct {
	Address types.Address
	Free    uint64 // bytes it can still be assigned
	Active  bool
}

// stats is what the scheduler knows of one node. Exported fields persist.
type stats struct {
	Successes  float64     `json:"successes"`
	Failures   float64     `json:"failures"`
	Updated    time.Time   `json:"updated"`
	Throughput float64     `json:"throughput"` // bytes per second, moving average
	Recent     []time.Time `json:"recent_failures,omitempty"`
	Until      time.Time   `json:"cooldown_until,omitempty"`
	Cooldowns  int         `json:"cooldowns,omitempty"`
}

// Scheduler keeps node scores and the cooldown pool. Safe for concurrent use.
type Scheduler struct {
	cfg Config
	now func() time.Time

	mu    sync.Mutex
	nodes map[types.Address]*stats
	rng   *rand.Rand
}

// New returns a scheduler with no history. now is the clock (time.Now if nil).
func New(cfg Config, now func() time.Time) *Scheduler {
	cfg.defaults()
	if now == nil {
		now = time.Now
	}
	return &Scheduler{cfg: cfg, now: now, nodes: map[types.Address]*stats{}, rng: rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64()))}
}

// Seed makes the choices reproducible (tests).
func (s *Scheduler) Seed(a, b uint64) {
	s.mu.Lock()
	s.rng = rand.New(rand.NewPCG(a, b))
	s.mu.Unlock()
}

func (s *Scheduler) get(a types.Address) *stats {
	st, ok := s.nodes[a]
	if !ok {
		st = &stats{Updated: s.now()}
		s.nodes[a] = st
	}
	// Fade the counts to now.
	now := s.now()
	if dt := now.Sub(st.Updated); dt > 0 {
		f := math.Pow(0.5, float64(dt)/float64(s.cfg.HalfLife.D()))
		st.Successes *= f
		st.Failures *= f
		st.Updated = now
	}
	return st
}

// score is a node's weight: its smoothed success rate times a factor that
// grows with throughput relative to the median of the candidates.
func (s *Scheduler) score(st *stats, medianTP float64) float64 {
	rate := (st.Successes + 1) / (st.Successes + st.Failures + 2)
	tp := 1.0
	if medianTP > 0 && st.Throughput > 0 {
		tp = 2 * st.Throughput / (st.Throughput + medianTP) // 1 at the median, up to 2
	}
	return rate * rate * tp // squared: a node that fails half the time is chosen a quarter as often
}

// PriorScore is the score of a node with no history.
func PriorScore() float64 { return (&Scheduler{}).score(&stats{}, 0) }

// Pick chooses n distinct nodes, each with at least need bytes free, none in
// avoid. It returns a *ShortError when fewer candidates exist.
func (s *Scheduler) Pick(nodes []Node, need uint64, n int, avoid map[types.Address]bool) ([]types.Address, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	var cands []types.Address
	var sts []*stats
	for _, nd := range nodes {
		a := nd.Address
		switch {
		case !nd.Active || nd.Free < need || avoid[a] || slices.Contains(s.cfg.Excluded, a):
			continue
		case len(s.cfg.Fixed) > 0 && !slices.Contains(s.cfg.Fixed, a):
			continue
		}
		st := s.get(a)
		if now.Before(st.Until) {
			continue
		}
		cands = append(cands, a)
		sts = append(sts, st)
	}
	if len(cands) < n {
		return nil, &ShortError{Have: len(cands), Need: n}
	}
	var tps []float64
	for _, st := range sts {
		if st.Throughput > 0 {
			tps = append(tps, st.Throughput)
		}
	}
	median := 0.0
	if len(tps) > 0 {
		slices.Sort(tps)
		median = tps[len(tps)/2]
	}
	// Weighted sampling without replacement (Efraimidis and Spirakis): each
	// candidate draws u^(1/w); the n largest keys win.
	type keyed struct {
		a   types.Address
		key float64
	}
	ks := make([]keyed, len(cands))
	for i, a := range cands {
		w := s.score(sts[i], median)
		if slices.Contains(s.cfg.Preferred, a) {
			w *= s.cfg.PreferredBoost
		}
		ks[i] = keyed{a, math.Pow(s.rng.Float64(), 1/w)}
	}
	slices.SortFunc(ks, func(x, y keyed) int {
		switch {
		case x.key > y.key:
			return -1
		case x.key < y.key:
			return 1
		}
		return 0
	})
	out := make([]types.Address, n)
	for i := range out {
		out[i] = ks[i].a
	}
	return out, nil
}

// Success records a push of bytes that took d.
func (s *Scheduler) Success(a types.Address, bytes int64, d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.get(a)
	st.Successes++
	if d > 0 && bytes > 0 {
		tp := float64(bytes) / d.Seconds()
		if st.Throughput == 0 {
			st.Throughput = tp
		} else {
			st.Throughput = 0.8*st.Throughput + 0.2*tp
		}
	}
}

// Failure records a failed push, a missed report deadline or bad bytes served.
// It returns true when the failure sent the node to the cooldown pool.
func (s *Scheduler) Failure(a types.Address) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.get(a)
	now := s.now()
	st.Failures++
	recent := st.Recent[:0]
	for _, t := range st.Recent {
		if now.Sub(t) < s.cfg.Window.D() {
			recent = append(recent, t)
		}
	}
	st.Recent = append(recent, now)
	if len(st.Recent) < s.cfg.Failures {
		return false
	}
	d := s.cfg.Cooldown.D() << min(st.Cooldowns, 30)
	if d <= 0 || d > s.cfg.MaxCooldown.D() {
		d = s.cfg.MaxCooldown.D()
	}
	st.Until, st.Cooldowns, st.Recent = now.Add(d), st.Cooldowns+1, nil
	return true
}

// NodeScore is what `deoss nodes` shows of a node.
type NodeScore struct {
	Address       types.Address `json:"address"`
	Score         float64       `json:"score"`
	Successes     float64       `json:"successes"`
	Failures      float64       `json:"failures"`
	Throughput    float64       `json:"throughput_bytes_per_second"`
	CooldownUntil time.Time     `json:"cooldown_until,omitzero"`
}

// Scores lists the nodes the scheduler knows, by address.
func (s *Scheduler) Scores() []NodeScore {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]NodeScore, 0, len(s.nodes))
	now := s.now()
	for a := range s.nodes {
		st := s.get(a)
		ns := NodeScore{Address: a, Score: s.score(st, 0), Successes: st.Successes, Failures: st.Failures, Throughput: st.Throughput}
		if now.Before(st.Until) {
			ns.CooldownUntil = st.Until
		}
		out = append(out, ns)
	}
	slices.SortFunc(out, func(x, y NodeScore) int { return slices.Compare(x.Address[:], y.Address[:]) })
	return out
}

// Save writes the scores and the cooldown pool to path (atomically).
func (s *Scheduler) Save(path string) error {
	s.mu.Lock()
	b, err := json.Marshal(s.nodes)
	s.mu.Unlock()
	if err != nil {
		return err
	}
	return fsutil.WriteFileAtomic(path, b, 0o600)
}

// Load reads what Save wrote; a missing file is an empty history.
func (s *Scheduler) Load(path string) error {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	nodes := map[types.Address]*stats{}
	if err := json.Unmarshal(b, &nodes); err != nil {
		return fmt.Errorf("scheduler state %s: %w", path, err)
	}
	s.mu.Lock()
	s.nodes = nodes
	s.mu.Unlock()
	return nil
}
