package chain

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	cmtcfg "github.com/cometbft/cometbft/config"
	"github.com/cometbft/cometbft/p2p"
	"github.com/cometbft/cometbft/privval"
	cmttypes "github.com/cometbft/cometbft/types"

	"github.com/deoss/deoss/internal/fsutil"
	"github.com/deoss/deoss/internal/ledger"
)

// NetworkSpec describes a network of validators on one host.
type NetworkSpec struct {
	ChainID    string
	Validators int
	// Host is the address validators listen on and dial (127.0.0.1).
	Host string
	// BasePort: validator i listens for P2P on BasePort+2i and RPC on
	// BasePort+2i+1. Keep ports below 32768, out of the kernel's ephemeral
	// range.
	BasePort      int
	TimeoutCommit time.Duration
	Genesis       ledger.Genesis
}

// Testnet writes one home per validator under dir (dir/v0, dir/v1, ...) with
// keys, a shared genesis and each other as persistent peers. It returns the
// homes.
func Testnet(dir string, spec NetworkSpec) ([]string, error) {
	if spec.Validators < 1 {
		return nil, fmt.Errorf("need at least one validator")
	}
	if spec.BasePort+2*spec.Validators >= 32768 {
		return nil, fmt.Errorf("ports up to %d reach the ephemeral range", spec.BasePort+2*spec.Validators)
	}
	if spec.Host == "" {
		spec.Host = "127.0.0.1"
	}
	spec.Genesis.ChainID = spec.ChainID
	homes := make([]string, spec.Validators)
	ids := make([]string, spec.Validators)
	var vals []cmttypes.GenesisValidator
	for i := range homes {
		home := filepath.Join(dir, fmt.Sprintf("v%d", i))
		homes[i] = home
		cfg := cmtcfg.DefaultConfig()
		cfg.SetRoot(home)
		for _, d := range []string{filepath.Dir(cfg.GenesisFile()), filepath.Join(home, "data")} {
			if err := os.MkdirAll(d, 0o700); err != nil {
				return nil, err
			}
		}
		nk, err := p2p.LoadOrGenNodeKey(cfg.NodeKeyFile())
		if err != nil {
			return nil, err
		}
		ids[i] = string(nk.ID())
		pv := privval.LoadOrGenFilePV(cfg.PrivValidatorKeyFile(), cfg.PrivValidatorStateFile())
		pub, err := pv.GetPubKey()
		if err != nil {
			return nil, err
		}
		vals = append(vals, cmttypes.GenesisValidator{Address: pub.Address(), PubKey: pub, Power: 10, Name: fmt.Sprintf("v%d", i)})
	}
	appState, err := json.Marshal(spec.Genesis)
	if err != nil {
		return nil, err
	}
	params := cmttypes.DefaultConsensusParams()
	params.Block.MaxBytes = 4 * ledger.MaxTxBytes
	gen := &cmttypes.GenesisDoc{
		ChainID:         spec.ChainID,
		GenesisTime:     time.Now().UTC().Truncate(time.Second),
		ConsensusParams: params,
		Validators:      vals,
		AppState:        appState,
	}
	if err := gen.ValidateAndComplete(); err != nil {
		return nil, err
	}
	for i, home := range homes {
		cfg := cmtcfg.DefaultConfig()
		cfg.SetRoot(home)
		if err := gen.SaveAs(cfg.GenesisFile()); err != nil {
			return nil, err
		}
		var peers []string
		for j := range homes {
			if j != i {
				peers = append(peers, fmt.Sprintf("%s@%s:%d", ids[j], spec.Host, spec.BasePort+2*j))
			}
		}
		s := Settings{
			Moniker:       fmt.Sprintf("v%d", i),
			P2P:           fmt.Sprintf("tcp://%s:%d", spec.Host, spec.BasePort+2*i),
			RPC:           fmt.Sprintf("tcp://%s:%d", spec.Host, spec.BasePort+2*i+1),
			Peers:         strings.Join(peers, ","),
			TimeoutCommit: Duration(spec.TimeoutCommit),
			Loopback:      true,
		}
		b, _ := json.MarshalIndent(s, "", "  ")
		if err := fsutil.WriteFileAtomic(filepath.Join(home, settingsFile), append(b, '\n'), 0o600); err != nil {
			return nil, err
		}
	}
	return homes, nil
}
