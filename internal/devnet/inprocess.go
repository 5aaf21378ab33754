package devnet

import (
	"context"
	"log/slog"

	"golang.org/x/sync/errgroup"

	"github.com/deoss/deoss/internal/chain"
	"github.com/deoss/deoss/internal/gateway"
	"github.com/deoss/deoss/internal/node"
)

// InProcess runs every part in this process, each in a goroutine of Group
// (made with errgroup.WithContext(Ctx)); they stop when Ctx ends and
// Group.Wait joins them.
type InProcess struct {
	Group *errgroup.Group
	Ctx   context.Context
	Log   *slog.Logger
}

// Validator implements Runner.
func (p *InProcess) Validator(ctx context.Context, _ int, home string) error {
	v, err := chain.NewValidator(home, p.Log)
	if err != nil {
		return err
	}
	ready := make(chan struct{})
	p.Group.Go(func() error { return v.Run(p.Ctx, ready) })
	return wait(ctx, p, ready)
}

// Node implements Runner.
func (p *InProcess) Node(ctx context.Context, _ int, home string) error {
	n, err := node.NewNode(home, p.Log)
	if err != nil {
		return err
	}
	ready := make(chan string, 1)
	p.Group.Go(func() error { return n.Run(p.Ctx, ready) })
	return wait(ctx, p, ready)
}

// Gateway implements Runner.
func (p *InProcess) Gateway(ctx context.Context, _ int, home string) error {
	g, err := gateway.NewGateway(home, p.Log)
	if err != nil {
		return err
	}
	ready := make(chan string, 1)
	p.Group.Go(func() error { return g.Run(p.Ctx, ready) })
	return wait(ctx, p, ready)
}

// wait waits for a part's ready signal, or for the end of ctx or of the
// group (a part that failed cancels it).
func wait[T any](ctx context.Context, p *InProcess, ready chan T) error {
	select {
	case <-ready:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-p.Ctx.Done():
		return p.Group.Wait()
	}
}
