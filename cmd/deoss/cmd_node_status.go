package main

import (
	"fmt"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/deoss/deoss/internal/auth"
	"github.com/deoss/deoss/internal/ledger"
	"github.com/deoss/deoss/internal/node"
	"github.com/deoss/deoss/internal/types"
)

// NodeStatus is `deoss node status`: the chain's record of one node, its
// proofs, its open challenges and its account.
type NodeStatus struct {
	Node       *ledger.Node        `json:"node"`
	Account    *ledger.AccountView `json:"account"`
	Challenges []ledger.Challenge  `json:"open_challenges"`
	Pool       ledger.Pool         `json:"pool"`
}

func newNodeStatusCmd(g *globals) *cobra.Command {
	var (
		home   string
		asJSON bool
	)
	cmd := &cobra.Command{
		Use:   "status [ADDRESS]",
		Short: "Show a node's state, proofs passed and missed, proven bytes, rewards and stake",
		Long: `Shows what the chain records of a storage node: its state (active, suspect,
faulty, exiting), its proofs passed and missed, the bytes it proved, its
rewards, penalties and stake, and its open challenges. The node is ADDRESS,
the node of --home, or the --key's account.`,
		Args: args(cobra.MaximumNArgs(1)),
		RunE: func(cmd *cobra.Command, a []string) error {
			var addr types.Address
			switch {
			case len(a) == 0 && home != "":
				var err error
				if addr, err = loadNodeKey(g, home); err != nil {
					return err
				}
			default:
				var err error
				if addr, err = addressArg(g, a); err != nil {
					return err
				}
			}
			c, err := g.client()
			if err != nil {
				return err
			}
			ctx, cancel := timeout(cmd)
			defer cancel()
			var st NodeStatus
			if st.Node, err = c.Node(ctx, addr); err != nil {
				return err
			}
			if st.Account, err = c.AccountView(ctx, addr); err != nil {
				return err
			}
			if st.Challenges, err = c.Challenges(ctx, addr); err != nil {
				return err
			}
			p, err := c.Pool(ctx)
			if err != nil {
				return err
			}
			st.Pool = *p
			if asJSON {
				return writeJSON(cmd.OutOrStdout(), st)
			}
			n := st.Node
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintf(tw, "node\t%s\n", n.Address)
			fmt.Fprintf(tw, "state\t%s\n", n.State)
			fmt.Fprintf(tw, "endpoint\t%s\n", n.Endpoint)
			fmt.Fprintf(tw, "assigned\t%s of %s\n", mib(int64(n.Assigned)), mib(int64(n.Capacity)))
			fmt.Fprintf(tw, "proofs\t%d passed, %d missed or wrong (%d in a row)\n", n.Passed, n.Missed, n.Faults)
			fmt.Fprintf(tw, "proven\t%s in all\n", mib(int64(n.Proven)))
			fmt.Fprintf(tw, "columns lost\t%d\n", n.Lost)
			fmt.Fprintf(tw, "rewards\t%d\n", n.Rewards)
			fmt.Fprintf(tw, "penalties\t%d\n", n.Penalties)
			fmt.Fprintf(tw, "stake\t%d\n", n.Stake)
			fmt.Fprintf(tw, "balance\t%d\n", st.Account.Balance)
			if st.Pool.EpochSeconds > 0 {
				fmt.Fprintf(tw, "epoch\t%d (%s each); pool %d\n", st.Pool.Epoch, time.Duration(st.Pool.EpochSeconds)*time.Second, st.Pool.Balance)
			} else {
				fmt.Fprintf(tw, "epoch\tproofs are off on this chain\n")
			}
			for _, ch := range st.Challenges {
				fmt.Fprintf(tw, "challenge\t%s column %d segment %d chunk %d, due %s\n", ch.FID, ch.Column, ch.Segment, ch.Chunk,
					time.Unix(ch.Deadline, 0).UTC().Format(time.RFC3339))
			}
			return tw.Flush()
		},
	}
	cmd.Flags().StringVar(&home, "home", "", "the node home whose node to show")
	jsonFlag(cmd, &asJSON)
	return cmd
}

// loadNodeKey reads the address of a node home's key.
func loadNodeKey(g *globals, home string) (types.Address, error) {
	pass, err := g.passphrase()
	if err != nil {
		return types.Address{}, err
	}
	k, err := auth.Load(node.KeyPath(home), pass)
	if err != nil {
		return types.Address{}, err
	}
	return k.Address(), nil
}

func newNodeStakeCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "stake AMOUNT",
		Short: "Lock AMOUNT more of the --key's balance as its node's stake",
		Args:  args(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, a []string) error {
			amount, err := strconv.ParseUint(a[0], 10, 64)
			if err != nil || amount == 0 {
				return usageError{fmt.Errorf("amount %q: want a positive number", a[0])}
			}
			return submit(cmd, g, ledger.Msg{IncreaseStake: &ledger.IncreaseStake{Amount: amount}})
		},
	}
}

func newNodeExitCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "exit",
		Short: "Leave the network: the --key's node takes no new columns, its columns are repaired onto others, then its stake is returned",
		Long: `Sends ExitNode for the --key's node. Its columns become restoral orders;
keep the node running until they have moved (it serves reads meanwhile):
then the chain removes it and returns its stake. "deoss node status" shows
what it still holds. The running node signs its proofs with the same key: if
this times out, run it again (a node that is exiting already answers so).`,
		Args: args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return submit(cmd, g, ledger.Msg{ExitNode: &ledger.ExitNode{}})
		},
	}
}
