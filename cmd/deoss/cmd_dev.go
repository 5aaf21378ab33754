package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/sync/errgroup"

	"github.com/deoss/deoss/internal/auth"
	"github.com/deoss/deoss/internal/chain"
	"github.com/deoss/deoss/internal/devnet"
	"github.com/deoss/deoss/internal/fsutil"
	"github.com/deoss/deoss/internal/gateway"
	"github.com/deoss/deoss/internal/gateway/console"
	"github.com/deoss/deoss/internal/s3"
	"github.com/deoss/deoss/internal/tlsutil"
	"github.com/deoss/deoss/sdk"
)

// devNetwork is DIR/network.json: what `deoss dev` runs and where.
type devNetwork struct {
	BasePort int      `json:"base_port"`
	Nodes    int      `json:"nodes"`
	ChainRPC string   `json:"chain_rpc"`
	Gateway  string   `json:"gateway"`
	NodeURLs []string `json:"node_urls"`
	User     string   `json:"user"`
	Faucet   string   `json:"faucet"`
	// TLS: every gateway and node speaks https with a certificate of the
	// network's own CA (DIR/tls/ca.pem).
	TLS bool `json:"tls,omitempty"`
	// S3 is the dev account's credential at the gateway's S3 endpoint.
	S3 *s3Settings `json:"s3,omitempty"`
}

func newDevCmd(g *globals) *cobra.Command {
	var dir string
	var nodes, basePort int
	var withTLS bool
	cmd := &cobra.Command{
		Use:   "dev",
		Short: "Run a whole local network in one process: a validator, a gateway and storage nodes",
		Long: `Runs a validator (short blocks, a faucet), a gateway and --nodes storage
nodes, each with its own folder under --dir and its own port on 127.0.0.1.
Creates and funds a dev account, buys it the territory "home" and authorizes
the gateway; writes DIR/client.yaml (which every client command reads for
what no flag, environment variable or --config file sets; deoss config shows
it) and DIR/network.json. A second run reuses DIR.
Other storage nodes may join: deoss node init --chain <chain_rpc> ...`,
		Args: args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGINT, syscall.SIGTERM)
			defer stop()
			return runDev(ctx, cmd, dir, nodes, basePort, withTLS)
		},
	}
	cmd.Flags().StringVar(&dir, "dir", defaultDevDir(), "folder of the network (reused when it exists)")
	cmd.Flags().IntVar(&nodes, "nodes", 12, "storage nodes to run in this process (0: only the chain and the gateway)")
	cmd.Flags().BoolVar(&withTLS, "tls", false, "make a local CA and serve the gateway and nodes over https (a first run only; DIR/tls/ca.pem is the CA clients trust)")
	cmd.Flags().IntVar(&basePort, "base-port", 0, "first of the 67 ports the network takes on a first run (default: a free range from 21000)")
	return cmd
}

// freeBase finds n consecutive free ports below the ephemeral range.
func freeBase(n int) (int, error) {
	for base := 21000; base+n < 32000; base += n + 7 {
		free := true
		for p := base; p < base+n && free; p++ {
			l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p))
			if err != nil {
				free = false
				continue
			}
			l.Close()
		}
		if free {
			return base, nil
		}
	}
	return 0, errors.New("no free ports between 21000 and 32000")
}

func runDev(ctx context.Context, cmd *cobra.Command, dir string, nodes, basePort int, withTLS bool) error {
	out := cmd.OutOrStdout()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	netPath := filepath.Join(dir, "network.json")
	var nw devNetwork
	if err := fsutil.ReadJSON(netPath, &nw); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	if nodes > 64 {
		return usageError{errors.New("--nodes: at most 64")}
	}
	if withTLS && nw.BasePort != 0 && !nw.TLS {
		return usageError{fmt.Errorf("--tls: the network in %s was made without TLS; use another --dir", dir)}
	}
	if nw.BasePort == 0 {
		nw.TLS = withTLS
	}
	if nw.BasePort == 0 && basePort != 0 {
		nw.BasePort = basePort
	}
	if nw.BasePort == 0 {
		// Ports: chain P2P and RPC, the gateway, then room for 64 nodes, so
		// that a later run with more nodes keeps the same ports.
		base, err := freeBase(3 + 64 + 1)
		if err != nil {
			return err
		}
		nw.BasePort = base
	}
	logf, err := os.OpenFile(filepath.Join(dir, "dev.log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	defer logf.Close()
	log := slog.New(slog.NewTextHandler(logf, &slog.HandlerOptions{Level: slog.LevelInfo}))

	// The S3 port comes after room for 64 nodes (as the base was chosen).
	spec := devnet.Spec{Layout: devnet.Layout{Dir: dir, Base: nw.BasePort, Validators: 1, Gateways: 1, Nodes: nodes, S3Base: nw.BasePort + 3 + 64}}
	// Small files are packed within seconds (a network waits minutes).
	spec.Gateway = func(_ int, cfg *gateway.Config) {
		cfg.PackTerritory, cfg.PackMaxAge = "packs", chain.Duration(3*time.Second)
	}
	var caFile string
	if nw.TLS {
		files, err := tlsutil.EnsureDev(filepath.Join(dir, "tls"))
		if err != nil {
			return err
		}
		spec.TLS, caFile = &files, files.CA
	}
	ctx, stop := context.WithCancel(ctx)
	defer stop()
	eg, gctx := errgroup.WithContext(ctx)
	// Whatever fails once parts run stops them all, and waits for them.
	fail := func(err error) error {
		stop()
		if werr := devWait(eg); err == nil || ctx.Err() != nil && werr != nil {
			return werr
		}
		return err
	}
	setup, cancel := context.WithTimeout(gctx, 2*time.Minute)
	defer cancel()
	net, err := devnet.Assemble(setup, spec, &devnet.InProcess{Group: eg, Ctx: gctx, Log: log}, nil)
	if err != nil {
		if ctx.Err() != nil { // interrupted while starting
			return fail(nil)
		}
		return fail(err)
	}

	// The dev account: funded, with a territory, the gateway authorized.
	ukey, err := devnet.LoadOrCreateKey(filepath.Join(dir, "user.json"))
	if err != nil {
		return fail(err)
	}
	if err := devnet.SetupUser(setup, net.Chain, ukey, "home", 64, 365, net.GatewayKeys[0].Address()); err != nil {
		return fail(err)
	}
	nw.Nodes = nodes
	nw.ChainRPC = spec.ValidatorRPC(0)
	nw.Gateway = spec.Scheme() + spec.GatewayListen(0)
	nw.NodeURLs = nil
	for i := range nodes {
		nw.NodeURLs = append(nw.NodeURLs, spec.Scheme()+spec.NodeListen(i))
	}
	nw.User = ukey.Address().String()
	nw.Faucet = "dev chain: any account may send the Faucet message (deoss account faucet)"
	s3set, err := devS3Credential(setup, nw.Gateway, ukey, caFile, nw.S3)
	if err != nil {
		return fail(err)
	}
	s3set.Endpoint = spec.Scheme() + spec.S3Listen(0)
	nw.S3 = s3set
	if err := saveClientConfig(filepath.Join(dir, "client.yaml"), &clientConfig{Gateway: nw.Gateway, Chain: nw.ChainRPC,
		Key: filepath.Join(dir, "user.json"), Territory: "home", CAFile: caFile, S3: s3set}); err != nil {
		return fail(err)
	}
	if err := fsutil.WriteJSON(netPath, &nw); err != nil {
		return fail(err)
	}
	fmt.Fprintf(out, "chain:   %s\ngateway: %s\nnodes:   %d (%s ...)\naccount: %s (territory \"home\")\nconfig:  %s\nlogs:    %s\n",
		nw.ChainRPC, nw.Gateway, nodes, firstOr(nw.NodeURLs, "none"), nw.User, filepath.Join(dir, "client.yaml"), filepath.Join(dir, "dev.log"))
	fmt.Fprintf(out, "s3:      %s (region %s)\n", s3set.Endpoint, s3set.Region)
	fmt.Fprintf(out, "         export AWS_ACCESS_KEY_ID=%s AWS_SECRET_ACCESS_KEY=%s AWS_DEFAULT_REGION=%s\n", s3set.AccessKey, s3set.SecretKey, s3set.Region)
	fmt.Fprintf(out, "         aws --endpoint-url %s s3 ls\n", s3set.Endpoint)
	fmt.Fprintf(out, "console: %s\n         (once, for %s; deoss console prints another)\n",
		console.Link(nw.Gateway, ukey, net.GatewayKeys[0].Address(), console.MaxLinkLifetime, time.Now()), console.MaxLinkLifetime)
	fmt.Fprintln(out, "deoss dev: ready (Ctrl-C stops)")
	return devWait(eg)
}

// devS3Credential returns the dev account's S3 credential: the one of an
// earlier run while the gateway still knows it, else a new one.
func devS3Credential(ctx context.Context, gw string, k *auth.Key, caFile string, had *s3Settings) (*s3Settings, error) {
	c := sdk.NewWithKey(gw, k)
	if caFile != "" {
		if err := c.UseCA(caFile); err != nil {
			return nil, err
		}
	}
	if had != nil && had.SecretKey != "" {
		keys, err := c.S3Keys(ctx)
		if err != nil {
			return nil, fmt.Errorf("s3 credentials: %w", err)
		}
		for _, key := range keys {
			if key.AccessKey == had.AccessKey {
				return had, nil
			}
		}
	}
	key, err := c.CreateS3Key(ctx, "home")
	if err != nil {
		return nil, fmt.Errorf("s3 credential: %w", err)
	}
	return &s3Settings{Region: s3.DefaultRegion, AccessKey: key.AccessKey, SecretKey: key.SecretKey}, nil
}

// devWait joins the network's parts; an interrupt is a clean stop.
func devWait(eg *errgroup.Group) error {
	err := eg.Wait()
	if errors.Is(err, context.Canceled) {
		err = nil
	}
	return err
}

func firstOr(s []string, def string) string {
	if len(s) == 0 {
		return def
	}
	return s[0]
}
