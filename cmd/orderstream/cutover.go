package main

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/orderstream/orderstream/internal/rebuild"
	"github.com/orderstream/orderstream/producer/relay"
	"github.com/orderstream/orderstream/projections"
	"github.com/spf13/pflag"
	"github.com/twmb/franz-go/pkg/kadm"
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
	pool, err := g.pgPool(ctx)
	if err != nil {
		return rebuild.PostgresWriteSide{}, nil, err
	}
	return rebuild.PostgresWriteSide{Pool: pool, Slot: gf.slot, RelayWait: gf.relayWait}, pool, nil
}

// checkedCutover makes generation n of p serve after rebuild.CheckCutover
// passed (or --force), judging it by the topic's log start offsets and the
// write side, with the committed offsets of group (the consumer group that
// filled n) as the end of what n has applied.
func checkedCutover(ctx context.Context, g *globals, p projections.ReadModel, group string, n uint32, gf guardFlags) error {
	ws, pool, err := gf.writeSide(ctx, g)
	if err != nil {
		return err
	}
	defer pool.Close()
	kcl, err := g.kafkaClient()
	if err != nil {
		return err
	}
	defer kcl.Close()
	ev, err := rebuild.GroupEvidence(ctx, kadm.NewClient(kcl), g.topic, group)
	if err != nil {
		return err
	}
	cfg, err := g.guardConfig(ws)
	if err != nil {
		return err
	}
	cfg.Force = gf.force
	if _, err := rebuild.CheckCutover(ctx, p, n, ev, cfg, g.log); err != nil { // what --force overrode is logged
		return err
	}
	return p.Cutover(ctx, n)
}
