package gateway

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"slices"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/deoss/deoss/internal/auth"
	"github.com/deoss/deoss/internal/backoff"
	"github.com/deoss/deoss/internal/chain"
	"github.com/deoss/deoss/internal/fsutil"
	"github.com/deoss/deoss/internal/gateway/api"
	"github.com/deoss/deoss/internal/gateway/cache"
	"github.com/deoss/deoss/internal/gateway/console"
	"github.com/deoss/deoss/internal/gateway/distribute"
	"github.com/deoss/deoss/internal/gateway/ingest"
	"github.com/deoss/deoss/internal/gateway/pack"
	"github.com/deoss/deoss/internal/gateway/pipeline"
	"github.com/deoss/deoss/internal/gateway/read"
	"github.com/deoss/deoss/internal/gateway/scheduler"
	"github.com/deoss/deoss/internal/gateway/upload"
	"github.com/deoss/deoss/internal/gateway/work"
	"github.com/deoss/deoss/internal/httpapi"
	"github.com/deoss/deoss/internal/ledger"
	"github.com/deoss/deoss/internal/s3"
	"github.com/deoss/deoss/internal/tlsutil"
	"github.com/deoss/deoss/internal/ttlcache"
	"github.com/deoss/deoss/internal/types"
)

// Config is a gateway's configuration, kept in <home>/gateway.json.
type Config struct {
	Chain     string           `json:"chain"`
	Endpoint  string           `json:"endpoint"`
	Listen    string           `json:"listen"`
	Scheduler scheduler.Config `json:"scheduler"`
	// MaxFileSize bounds one file; MaxChunkSize one chunk.
	MaxFileSize  int64          `json:"max_file_size"`
	MaxChunkSize int64          `json:"max_chunk_size"`
	SessionTTL   chain.Duration `json:"session_ttl"`
	// ReportDeadline is how long a node has to report a pushed column.
	ReportDeadline chain.Duration `json:"report_deadline"`
	// PushTimeout bounds pushing one fragment to a node; PushFiles is how
	// many files are distributed at once.
	PushTimeout chain.Duration `json:"push_timeout"`
	PushFiles   int            `json:"push_files"`
	// CacheBytes bounds the fragment cache (home/cache).
	CacheBytes int64 `json:"cache_bytes"`
	// Downloads is how many downloads decode at once (each holds about 3
	// segments); more wait.
	Downloads int `json:"downloads"`
	// Encodes is how many uploads encode at once (each holds about 2
	// segments and their parity); more wait. Together with Downloads it
	// bounds the gateway's memory.
	Encodes int `json:"encodes"`
	// MaxPending bounds the bytes one account holds at this gateway in open
	// sessions, streams and files not yet declared (default: MaxFileSize).
	MaxPending int64 `json:"max_pending_bytes,omitempty"`
	// DeclareGiveUp is how long a file its territory cannot take is retried
	// before it is failed and its copy freed (default 24h).
	DeclareGiveUp chain.Duration `json:"declare_give_up,omitempty"`
	// CacheOnly serves reads and peers only: no uploads, no deletes.
	CacheOnly bool `json:"cache_only,omitempty"`
	// Pprof serves Go's profiler at /debug/pprof/ (for operators chasing
	// CPU or memory; off by default).
	Pprof bool `json:"pprof,omitempty"`
	// MetricsListen serves /metrics (and pprof) on this address only, apart
	// from the users' listener. Without it they are on the users' listener,
	// for holders of MetricsToken (Authorization: Bearer), or without a
	// token for loopback clients only.
	MetricsListen string `json:"metrics_listen,omitempty"`
	MetricsToken  string `json:"metrics_token,omitempty"`
	// AllowInsecure takes Cipher headers and unsigned payloads over plain
	// HTTP (dev networks, or TLS ended by a proxy in front); off, they
	// need TLS.
	AllowInsecure bool `json:"allow_insecure,omitempty"`
	// TLSCert and TLSKey (PEM files) make the listener speak TLS; CAFile
	// adds a CA to the system's roots for what the gateway calls (nodes,
	// peers), for private and dev CAs.
	TLSCert string `json:"tls_cert,omitempty"`
	TLSKey  string `json:"tls_key,omitempty"`
	CAFile  string `json:"ca_file,omitempty"`
	// S3Listen, when set, serves the S3 endpoint on this address (TLS
	// with the same certificate); S3Region is the region its clients sign
	// for (default us-east-1).
	S3Listen string `json:"s3_listen,omitempty"`
	S3Region string `json:"s3_region,omitempty"`
	// PackTerritory is the gateway's own territory its packs of small
	// objects are stored in; empty turns packing off. While it is missing,
	// expired or full, uploads are files of their own.
	PackTerritory string `json:"pack_territory,omitempty"`
	// PackThreshold: uploads of at most this many bytes are packed
	// (default 16 MiB); PackMaxAge: a pack is sealed once its oldest
	// object waited this long (default 5 minutes).
	PackThreshold int64          `json:"pack_threshold,omitempty"`
	PackMaxAge    chain.Duration `json:"pack_max_age,omitempty"`
	// PackCompactAge and PackCompactDead: a pack at least this old (default
	// 24h) with at least this share of its bytes deleted (default 0.3) is
	// repacked.
	PackCompactAge  chain.Duration `json:"pack_compact_age,omitempty"`
	PackCompactDead float64        `json:"pack_compact_dead,omitempty"`
}

// DefaultConfig is the configuration `deoss gateway init` writes.
func DefaultConfig() Config {
	return Config{
		MaxFileSize:    int64(types.MaxSegments) * (types.SegmentSize - types.GCMOverhead),
		MaxChunkSize:   64 << 20,
		SessionTTL:     chain.Duration(24 * time.Hour),
		ReportDeadline: chain.Duration(2 * time.Minute),
		PushTimeout:    chain.Duration(time.Minute),
		PushFiles:      4,
		CacheBytes:     4 << 30,
		Downloads:      4,
		Encodes:        2,
	}
}

const configFile = "gateway.json"

// LoadConfig reads <home>/gateway.json over the defaults.
func LoadConfig(home string) (*Config, error) {
	c := DefaultConfig()
	if err := fsutil.ReadJSON(filepath.Join(home, configFile), &c); err != nil {
		return nil, err
	}
	return &c, nil
}

// SaveConfig writes <home>/gateway.json.
func SaveConfig(home string, c *Config) error {
	return fsutil.WriteJSON(filepath.Join(home, configFile), c)
}

// KeyPath is where a gateway home keeps its key.
func KeyPath(home string) string { return filepath.Join(home, "key.json") }

// Gateway is the gateway daemon: NewGateway remembers, Run serves.
type Gateway struct {
	home string
	cfg  *Config
	key  *auth.Key
	pass []byte
	log  *slog.Logger
}

// Address is the gateway's account.
func (g *Gateway) Address() types.Address { return g.key.Address() }

// Option changes how NewGateway builds a gateway.
type Option func(*Gateway)

// WithConfig runs the gateway with cfg instead of the home's saved config
// (the saved file is not changed).
func WithConfig(cfg *Config) Option { return func(g *Gateway) { g.cfg = cfg } }

// WithPassphrase opens a sealed key file with passphrase. Sealed, the key
// is not in the home in the clear, and neither is what it protects: the
// key-encryption key of sessions' file keys derives from it.
func WithPassphrase(passphrase []byte) Option { return func(g *Gateway) { g.pass = passphrase } }

// NewGateway prepares the gateway of a home written by `deoss gateway init`.
func NewGateway(home string, log *slog.Logger, opts ...Option) (*Gateway, error) {
	g := &Gateway{home: home}
	for _, o := range opts {
		o(g)
	}
	k, err := auth.Load(KeyPath(home), g.pass)
	if err != nil {
		return nil, fmt.Errorf("gateway key: %w", err)
	}
	g.key, g.log = k, log.With("gateway", k.Address().String()[:14])
	if g.cfg == nil {
		if g.cfg, err = LoadConfig(home); err != nil {
			return nil, err
		}
	}
	return g, nil
}

// Run serves until ctx ends; ready receives the listen address.
func (g *Gateway) Run(ctx context.Context, ready chan<- string) error {
	var in *ingest.Ingest // set below; sessions open keys through it
	sessions, err := upload.Open(filepath.Join(g.home, "sessions"), upload.Options{
		TTL: time.Duration(g.cfg.SessionTTL), MaxSize: g.cfg.MaxFileSize, MaxChunkSize: g.cfg.MaxChunkSize, DefaultChunk: 8 << 20,
		ChunkKey: func(w []byte) ([]byte, error) { return ingest.ChunkKey(in, w) }})
	if err != nil {
		return err
	}
	defer sessions.Close()
	area, err := work.Open(filepath.Join(g.home, "work"))
	if err != nil {
		return err
	}
	queue, err := pipeline.Open(g.home)
	if err != nil {
		return err
	}
	defer queue.Close()
	sched := scheduler.New(g.cfg.Scheduler, nil)
	schedPath := filepath.Join(g.home, "scheduler.json")
	if err := sched.Load(schedPath); err != nil {
		return err
	}
	defer sched.Save(schedPath)
	cl, err := chain.Dial(g.cfg.Chain)
	if err != nil {
		return err
	}
	view := newChainView(cl, g.key)
	fc, err := cache.Open(filepath.Join(g.home, "cache"), g.cfg.CacheBytes)
	if err != nil {
		return err
	}
	reg := newRegistry(queue)
	clientTLS, err := tlsutil.ClientConfig(g.cfg.CAFile)
	if err != nil {
		return err
	}
	// The pack buffer opens before the ingest, which counts what the
	// buffer owes each territory as pending.
	var buf *pack.Buffer
	held := sessions.PendingBytes
	if g.cfg.PackTerritory != "" && !g.cfg.CacheOnly {
		if buf, err = pack.Open(filepath.Join(g.home, "packs"), time.Now, g.log.With("part", "packs")); err != nil {
			return err
		}
		defer buf.Close()
		held = func(owner types.Address) (map[string]uint64, uint64) {
			byT, all := sessions.PendingBytes(owner)
			owed, owedAll := buf.Owed(owner)
			for t, n := range owed {
				byT[t] += n
			}
			return byT, all + owedAll
		}
	}
	in = ingest.New(ingest.Config{Encodes: g.cfg.Encodes, MaxSize: g.cfg.MaxFileSize, KEK: g.key,
		MaxPending: g.cfg.MaxPending, SessionBytes: held}, view, area, queue, reg)
	dist := distribute.New(distribute.Config{ReportDeadline: g.cfg.ReportDeadline.D(), PushTimeout: g.cfg.PushTimeout.D(), Files: g.cfg.PushFiles, TLS: clientTLS,
		GiveUp: g.cfg.DeclareGiveUp.D()}, view, sched, area, queue, g.key, reg, g.log)
	rd := read.New(read.Config{Downloads: g.cfg.Downloads, TLS: clientTLS}, view, g.key.Address(), area, queue, fc, sched, reg, g.log)
	missing := read.NewMissingReporter(view, g.log)
	rd.ReportMissingTo(missing)
	// Spent nonces are kept on disk: a request seen before a restart is
	// refused after it.
	replay, err := auth.OpenReplayCache(filepath.Join(g.home, "replay.db"), auth.ReplayLimits{}, time.Now())
	if err != nil {
		return err
	}
	defer replay.Close()
	deps := api.Deps{Chain: view, Ingest: in, Sessions: sessions, Work: area, Queue: queue, Reader: rd, Cache: fc, Scores: sched, Registry: reg, Log: g.log,
		Self: g.key.Address(), Replay: replay, AllowInsecure: g.cfg.AllowInsecure, Console: console.NewSessions(time.Now), ShareKey: g.key}
	var s3srv *s3.Server
	if g.cfg.S3Listen != "" && !g.cfg.CacheOnly {
		keys, err := s3.OpenKeys(filepath.Join(g.home, "s3keys.db"), g.key.Seed())
		if err != nil {
			return err
		}
		defer keys.Close()
		deps.S3Keys = keys
		s3srv = s3.New(s3.Deps{Chain: view, Ingest: in, Reader: rd, Queue: queue, Sessions: sessions, Keys: keys, Region: g.cfg.S3Region, Log: g.log.With("part", "s3")})
	}
	var packer *pack.Packer
	if buf != nil {
		dir := filepath.Join(g.home, "packs")
		packer = pack.NewPacker(pack.Config{Territory: g.cfg.PackTerritory, Threshold: g.cfg.PackThreshold, MaxAge: g.cfg.PackMaxAge.D(),
			CompactAge: g.cfg.PackCompactAge.D(), CompactDead: g.cfg.PackCompactDead}, buf, g.key.Address(), in, view, queue, g.log.With("part", "packer"))
		packer.CompactWith(func(ctx context.Context, oid types.FID, w io.Writer) error {
			f, err := rd.Resolve(ctx, oid)
			if err != nil {
				return err
			}
			if f.Object == nil {
				return fmt.Errorf("%s is not a packed object", oid)
			}
			return rd.Read(ctx, w, f, 0, int64(f.Layout.Size), nil)
		})
		deps.Packing = packer
		rd.UsePacks(buf, view, dir)
		if s3srv != nil {
			s3srv.Packing = packer
		}
	} else {
		rd.UsePacks(nil, view, filepath.Join(g.home, "spool"))
	}
	a := api.New(deps)
	a.CacheOnly = g.cfg.CacheOnly

	ln, err := tlsutil.Listen(g.cfg.Listen, g.cfg.TLSCert, g.cfg.TLSKey)
	if err != nil {
		return err
	}
	eg, ctx := errgroup.WithContext(ctx)
	ops := httpapi.OpsHandler(reg, g.cfg.Pprof)
	handler := a.Handler()
	if g.cfg.MetricsListen != "" {
		oln, err := net.Listen("tcp", g.cfg.MetricsListen)
		if err != nil {
			ln.Close()
			return err
		}
		httpapi.Serve(ctx, eg, &http.Server{Handler: ops, ReadHeaderTimeout: 10 * time.Second}, oln)
	} else {
		mux := http.NewServeMux()
		mux.Handle("/", handler)
		guarded := httpapi.OpsGuard(g.cfg.MetricsToken, ops)
		mux.Handle("/metrics", guarded)
		mux.Handle("/debug/pprof/", guarded)
		handler = mux
	}
	hs := &http.Server{Handler: handler, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute, MaxHeaderBytes: 64 << 10}
	httpapi.Serve(ctx, eg, hs, ln)
	eg.Go(func() error { missing.Run(ctx); return nil })
	var s3Addr string
	if s3srv != nil {
		sln, err := tlsutil.Listen(g.cfg.S3Listen, g.cfg.TLSCert, g.cfg.TLSKey)
		if err != nil {
			return err
		}
		s3Addr = sln.Addr().String()
		// No ReadTimeout: a part streams for as long as it takes; idle
		// clients are cut by the idle timeout.
		httpapi.Serve(ctx, eg, &http.Server{Handler: s3srv, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute, MaxHeaderBytes: 64 << 10}, sln)
		pub := &s3.Publisher{Chain: view, Queue: queue, Log: g.log.With("part", "s3-publisher")}
		if packer != nil {
			pub.Buffered = packer.Buffered
		}
		eg.Go(func() error { pub.Run(ctx); return nil })
	}
	if packer != nil {
		eg.Go(func() error { packer.Run(ctx); return nil })
	}
	if !g.cfg.CacheOnly {
		eg.Go(func() error { dist.Run(ctx); return nil })
		// Blocks with events (a report, a stored file, a reassignment) wake
		// the distributor instead of a poll.
		eg.Go(func() error { followChain(ctx, cl, dist.Wake, g.log); return nil })
	}
	eg.Go(func() error {
		// Housekeeping: expired sessions, and the scheduler's memory (saved
		// often: a killed gateway keeps what it learned of bad nodes).
		for {
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(5 * time.Second):
			}
			if _, err := sessions.Expire(); err != nil {
				g.log.Warn("expire sessions", "err", err)
			}
			if err := sched.Save(schedPath); err != nil {
				g.log.Warn("save scheduler", "err", err)
			}
		}
	})
	g.log.Info("gateway serving", "listen", ln.Addr().String(), "endpoint", g.cfg.Endpoint, "s3", s3Addr, "scheduler", fmt.Sprintf("%+v", g.cfg.Scheduler))
	if ready != nil {
		ready <- ln.Addr().String()
	}
	return eg.Wait()
}

// followChain calls wake for every block with events, from the chain's
// height now on, until ctx ends; a broken follow is taken up again after a
// pause (and wake called, as something may have been missed).
func followChain(ctx context.Context, c *chain.Client, wake func(), log *slog.Logger) {
	for ctx.Err() == nil {
		h, err := c.Height(ctx)
		if err == nil {
			err = c.Follow(ctx, h, func(be chain.BlockEvents) error {
				if len(be.Events) > 0 {
					wake()
				}
				return nil
			})
		}
		if ctx.Err() != nil {
			return
		}
		log.Warn("following the chain; trying again", "err", err)
		wake()
		backoff.Sleep(ctx, time.Second)
	}
}

// chainView is the gateway's view of the chain over a chain.Client: the
// typed queries, a short cache of positive authorizations, and submits
// signed by the gateway.
type chainView struct {
	*chain.Client
	signer *chain.Signer
	self   types.Address
	authz  *ttlcache.Cache[authzKey, bool] // users seen authorizing gateways
}

// authzKey is a user and a gateway it authorizes.
type authzKey struct{ user, gateway types.Address }

func newChainView(c *chain.Client, key *auth.Key) *chainView {
	return &chainView{Client: c, signer: c.Signer(key), self: key.Address(), authz: ttlcache.New[authzKey, bool](10*time.Second, 100_000)}
}

// Authorized reports whether user authorized this gateway; a positive answer
// is kept 10 s (a revoke takes effect within that).
func (v *chainView) Authorized(ctx context.Context, user types.Address) (bool, error) {
	return v.Authorizes(ctx, user, v.self)
}

// Authorizes reports whether user authorized gateway (kept as Authorized).
func (v *chainView) Authorizes(ctx context.Context, user, gateway types.Address) (bool, error) {
	k := authzKey{user, gateway}
	if _, ok := v.authz.Get(k); ok {
		return true, nil
	}
	gws, err := v.Client.Authorized(ctx, user)
	if err != nil || !slices.Contains(gws, gateway) {
		return false, err
	}
	v.authz.Put(k, true)
	return true, nil
}

// Submit sends a message signed by the gateway and waits for its block.
func (v *chainView) Submit(ctx context.Context, m ledger.Msg) error {
	_, err := v.signer.Submit(ctx, m)
	return err
}
