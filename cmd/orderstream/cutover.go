package main

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/orderstream/orderstream/internal/rebuild"
	"github.com/orderstream/orderstream/producer/relay"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// guardFlags are the settings of the checks before a cutover
// (rebuild.CheckCutover).
type guardFlags struct {
	force     bool
	slot      string
	relayWait time.Duration
}

// addGuardFlags registers --force, --slot and --relay-wait.
func addGuardFlags(f *pflag.FlagSet, gf *guardFlags) {
	f.BoolVar(&gf.force, "force", false, "cut over even when the checks before the cutover fail (logged at WARN, naming what was overridden)")
	addWriteSideFlags(f, gf)
}

// addWriteSideFlags registers --slot and --relay-wait, the settings of the
// comparison with the write side (the cutover guard's and verify's).
func addWriteSideFlags(f *pflag.FlagSet, gf *guardFlags) {
	f.StringVar(&gf.slot, "slot", relay.DefaultSlot, "replication slot (or poll cursor name) of the relay, whose progress the write-side comparison waits for")
	f.DurationVar(&gf.relayWait, "relay-wait", rebuild.DefaultRelayWait, "how long the write-side comparison waits for the relay to have relayed the write side's current state")
}

// writeSide opens the write side of --pg-url for the checks; close the pool.
func (gf guardFlags) writeSide(ctx context.Context, g *globals) (rebuild.PostgresWriteSide, *pgxpool.Pool, error) {
	pool, err := pgxpool.New(ctx, g.pgURL)
	if err != nil {
		return rebuild.PostgresWriteSide{}, nil, usagef("--pg-url: %v", err)
	}
	return rebuild.PostgresWriteSide{Pool: pool, Slot: gf.slot, RelayWait: gf.relayWait}, pool, nil
}

// checkedCutover makes generation n of the named projection serve after
// rebuild.CheckCutover passed (or --force), judging it by the topic's log
// start offsets and the write side, with the committed offsets of group
// (the consumer group that fills n) as the end of what n has applied.
func checkedCutover(ctx context.Context, g *globals, name, indexPrefix, group string, n uint32, gf guardFlags) error {
	p, err := openProjection(g, name, indexPrefix)
	if err != nil {
		return err
	}
	defer p.Close()
	ws, pool, err := gf.writeSide(ctx, g)
	if err != nil {
		return err
	}
	defer pool.Close()
	kcl, err := kgo.NewClient(kgo.SeedBrokers(g.brokers...))
	if err != nil {
		return usagef("--kafka-brokers: %v", err)
	}
	defer kcl.Close()
	ev, err := rebuild.GroupEvidence(ctx, kadm.NewClient(kcl), g.topic, group)
	if err != nil {
		return fmt.Errorf("cutover to %s generation %d: %w", name, n, err)
	}
	cfg := rebuild.GuardConfig{Brokers: g.brokers, Topic: g.topic, WriteSide: ws, Force: gf.force}
	if _, err := rebuild.CheckCutover(ctx, p, n, ev, cfg, g.log); err != nil { // what --force overrode is logged
		return err
	}
	if err := p.Cutover(ctx, n); err != nil {
		return fmt.Errorf("cutover to %s generation %d: %w", name, n, err)
	}
	return nil
}

// newCheckedCutoverCmd is `cutover N` of the named projection's generation
// commands (indexPrefix: the search read model's, nil for analytics).
func newCheckedCutoverCmd(g *globals, name string, indexPrefix *string, short string) *cobra.Command {
	var (
		gf    guardFlags
		group string
	)
	cmd := &cobra.Command{
		Use:   "cutover N",
		Short: short,
		Long: short + `.

Checks first, and refuses (exit 1, nothing switched) unless: every
partition's log start offset is 0, and generation N holds every order of
the write side (PostgreSQL orders.version, once the relay of --slot has
relayed it) at its version, apart from orders whose next event lies past the
committed offsets of --group (the consumer group that fills N, in flight).
--force switches anyway and logs at WARN what it overrode.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			n, err := strconv.ParseUint(args[0], 10, 32)
			if err != nil || n == 0 {
				return usagef("generation %q: want a number >= 1", args[0])
			}
			prefix := ""
			if indexPrefix != nil {
				prefix = *indexPrefix
			}
			if err := checkedCutover(cmd.Context(), g, name, prefix, group, uint32(n), gf); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "generation %d serving\n", n)
			return nil
		},
	}
	addGuardFlags(cmd.Flags(), &gf)
	cmd.Flags().StringVar(&group, "group", "orderstream-"+name, "consumer group that fills generation N (the daemon's): events past its committed offsets count as in flight")
	return cmd
}
