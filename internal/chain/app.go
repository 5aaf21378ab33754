package chain

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"

	abci "github.com/cometbft/cometbft/abci/types"

	"github.com/deoss/deoss/internal/ledger"
	"github.com/deoss/deoss/internal/version"
)

// App is the ABCI application: the ledger over a bbolt store.
type App struct {
	abci.BaseApplication

	mu     sync.Mutex // CometBFT calls from several connections
	st     *store
	l      *ledger.Ledger
	height int64 // the block being finalized
}

var _ abci.Application = (*App)(nil)

// OpenApp opens (or creates) the application state at path.
func OpenApp(path string) (*App, error) {
	st, err := openStore(path)
	if err != nil {
		return nil, err
	}
	_, appHash := st.last()
	return &App{st: st, l: ledger.New(st, appHash)}, nil
}

// Close closes the state file.
func (a *App) Close() error { return a.st.Close() }

// Info tells CometBFT where the application stands, so that it replays only
// the blocks after the last commit.
func (a *App) Info(context.Context, *abci.RequestInfo) (*abci.ResponseInfo, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	h, hash := a.st.last()
	return &abci.ResponseInfo{
		Data:             "deoss",
		Version:          version.Version,
		LastBlockHeight:  h,
		LastBlockAppHash: hash,
	}, nil
}

// InitChain loads the genesis state (the genesis file's app_state is a
// ledger.Genesis). It is committed with the first block.
func (a *App) InitChain(_ context.Context, req *abci.RequestInitChain) (*abci.ResponseInitChain, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	var g ledger.Genesis
	if err := json.Unmarshal(req.AppStateBytes, &g); err != nil {
		return nil, fmt.Errorf("genesis app_state: %w", err)
	}
	if g.ChainID != req.ChainId {
		return nil, fmt.Errorf("genesis app_state chain id %q differs from %q", g.ChainID, req.ChainId)
	}
	if err := a.l.InitChain(&g); err != nil {
		return nil, err
	}
	return &abci.ResponseInitChain{}, nil
}

// CheckTx admits a transaction to the mempool.
func (a *App) CheckTx(_ context.Context, req *abci.RequestCheckTx) (*abci.ResponseCheckTx, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if _, err := a.l.CheckTx(req.Tx); err != nil {
		return &abci.ResponseCheckTx{Code: uint32(ledger.CodeOf(err)), Log: err.Error(), Codespace: "deoss"}, nil
	}
	return &abci.ResponseCheckTx{Code: 0}, nil
}

// PrepareProposal orders this validator's proposal so that each sender's
// nonces follow one another (ledger.Propose).
func (a *App) PrepareProposal(_ context.Context, req *abci.RequestPrepareProposal) (*abci.ResponsePrepareProposal, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return &abci.ResponsePrepareProposal{Txs: a.l.Propose(req.Txs, req.MaxTxBytes)}, nil
}

// FinalizeBlock applies a decided block and returns the app hash it leads to.
func (a *App) FinalizeBlock(_ context.Context, req *abci.RequestFinalizeBlock) (*abci.ResponseFinalizeBlock, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.height = req.Height
	a.l.BeginBlock(req.Height, req.Time.Unix(), req.Hash)
	res := &abci.ResponseFinalizeBlock{TxResults: make([]*abci.ExecTxResult, len(req.Txs))}
	for i, tx := range req.Txs {
		r := a.l.DeliverTx(tx)
		res.TxResults[i] = &abci.ExecTxResult{Code: uint32(r.Code), Log: r.Log, Codespace: codespace(r.Code), Events: toABCI(r.Events)}
	}
	res.Events = toABCI(a.l.EndBlock())
	res.AppHash = a.l.PendingHash()
	return res, nil
}

// Commit persists the block: state changes, height and app hash together.
func (a *App) Commit(context.Context, *abci.RequestCommit) (*abci.ResponseCommit, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	changes, hash := a.l.Commit()
	if err := a.st.commit(changes, a.height, hash); err != nil {
		// The block is decided; without its state this validator cannot
		// go on. Stop rather than diverge.
		return nil, fmt.Errorf("persist block %d: %w", a.height, err)
	}
	return &abci.ResponseCommit{}, nil
}

// Query answers ledger queries; the path is the ledger's query path.
func (a *App) Query(_ context.Context, req *abci.RequestQuery) (*abci.ResponseQuery, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	h, _ := a.st.last()
	b, err := a.l.Query(req.Path)
	if err != nil {
		return &abci.ResponseQuery{Code: uint32(ledger.CodeOf(err)), Log: err.Error(), Codespace: "deoss", Height: h}, nil
	}
	return &abci.ResponseQuery{Value: b, Height: h}, nil
}

func codespace(c ledger.Code) string {
	if c == ledger.CodeOK {
		return ""
	}
	return "deoss"
}

func toABCI(evs []ledger.Event) []abci.Event {
	out := make([]abci.Event, 0, len(evs))
	for _, e := range evs {
		ae := abci.Event{Type: e.Type}
		for _, a := range e.Attrs {
			ae.Attributes = append(ae.Attributes, abci.EventAttribute{Key: a.Key, Value: a.Value, Index: true})
		}
		out = append(out, ae)
	}
	return out
}

func fromABCI(typ string, attrs []abci.EventAttribute) ledger.Event {
	e := ledger.Event{Type: typ}
	for _, a := range attrs {
		e.Attrs = append(e.Attrs, ledger.Attr{Key: a.Key, Value: a.Value})
	}
	return e
}
