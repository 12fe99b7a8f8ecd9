package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/orderstream/orderstream/consumers"
	"github.com/orderstream/orderstream/internal/rebuild"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// verifyFlags are the settings of `orderstream verify`.
type verifyFlags struct {
	guard       guardFlags         // --slot, --relay-wait
	groups      map[string]*string // read model → its daemon's group (--<name>-group)
	sample      int
	indexPrefix string
	format      outputFormat
}

// errDrift is returned (exit 1) when a read model drifted from the write
// side; the report names the orders.
var errDrift = errors.New("read model drift")

func newVerifyCmd(g *globals) *cobra.Command {
	fl := verifyFlags{groups: map[string]*string{}}
	cmd := &cobra.Command{
		Use:   "verify [PROJECTION|all]",
		Short: "Compare the serving generation of each read model with the write side, order by order",
		Long: `Compares every order of the write side (PostgreSQL orders.version, once
the relay of --slot has relayed it) with the serving generation of the read
model (default all: analytics, then search), by the rule of the cutover
guard: an order agrees when the read model applied its last event; it is in
flight when its next event lies past the committed offsets of the read
model's daemon group (--analytics-group, --search-group), and is then not
reported; otherwise it drifted: missing (absent from the read model) or
stale (an older version). An order at the same version on both sides must
also have the same status (the contract's fold), total and line count, else
it drifted: wrong_status, wrong_total or wrong_line_count.

Exit status 0 when no order drifted, 1 when one did (each is listed) or a
fact could not be read, 2 on a usage error. --sample N compares N orders
drawn at random instead of all.`,
		Example: `  orderstream verify
  orderstream verify search --sample 1000 --format json`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			which := "all"
			if len(args) == 1 {
				which = args[0]
			}
			names, err := projectionArgs(which)
			if err != nil {
				return usagef("verify %q: want %s", which, wantReadModel(true))
			}
			if fl.sample < 0 {
				return usagef("--sample %d: want 0 (every order) or more", fl.sample)
			}
			vs, err := runVerify(cmd.Context(), g, fl, names)
			if perr := printVerifications(cmd.OutOrStdout(), vs, fl.format); perr != nil {
				return errors.Join(err, perr)
			}
			if err != nil {
				return err
			}
			var drifted []string
			for _, v := range vs {
				if !v.OK() {
					drifted = append(drifted, fmt.Sprintf("%s: %d of %d orders compared", v.Projection, len(v.Drift), v.Summary.Orders))
				}
			}
			if len(drifted) > 0 {
				return fmt.Errorf("%w: %s", errDrift, strings.Join(drifted, ", "))
			}
			return nil
		},
	}
	f := cmd.Flags()
	addWriteSideFlags(f, &fl.guard)
	addGroupFlags(f, fl.groups, ": events past its committed offsets count as in flight")
	f.IntVar(&fl.sample, "sample", 0, "compare this many orders of the write side drawn at random (0: every order)")
	addIndexPrefixFlag(f, &fl.indexPrefix)
	addFormatFlag(cmd, &fl.format)
	return cmd
}

// runVerify verifies the named read models in turn; it returns the
// verifications made before the first one that could not be made.
func runVerify(ctx context.Context, g *globals, fl verifyFlags, names []string) ([]rebuild.Verification, error) {
	ws, pool, err := fl.guard.writeSide(ctx, g)
	if err != nil {
		return nil, err
	}
	defer pool.Close()
	once := &rebuild.FactsOnce{WriteSide: ws} // one write-side snapshot for every read model
	var out []rebuild.Verification
	for _, name := range names {
		p, err := openProjection(g, name, fl.indexPrefix)
		if err != nil {
			return out, err
		}
		guard, err := g.guardConfig(once)
		if err != nil {
			_ = p.Close()
			return out, err
		}
		v, err := rebuild.Verify(ctx, p, rebuild.VerifyConfig{
			Guard: guard,
			Group: *fl.groups[name], Sample: fl.sample,
		})
		_ = p.Close() // read only: nothing to lose
		if err != nil {
			return out, err
		}
		out = append(out, v)
	}
	return out, nil
}

// printVerifications writes vs as JSON, or per read model a summary line
// and a table of the orders that drifted.
func printVerifications(w io.Writer, vs []rebuild.Verification, format outputFormat) error {
	if format == formatJSON {
		if vs == nil {
			vs = []rebuild.Verification{}
		}
		return writeJSON(w, vs)
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	for _, v := range vs {
		scope := "every order"
		if v.Sample > 0 {
			scope = fmt.Sprintf("a random sample of %d orders", v.Sample)
		}
		fmt.Fprintf(tw, "%s generation %d (%s): %s; status, total and line count compared for %d\n",
			v.Projection, v.Generation, scope, v.Summary, v.FactsCompared)
		if v.OK() {
			continue
		}
		fmt.Fprintln(tw, "ORDER\tDRIFT\tREAD MODEL VERSION\tWRITE SIDE VERSION\tDETAIL")
		for _, d := range v.Drift {
			fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%s\n", d.OrderID, d.Drift, d.ReadModel, d.WriteSide, d.Detail)
		}
	}
	return tw.Flush()
}

// periodicVerify are the settings of a daemon's periodic read-model check
// (rebuild.PeriodicVerifier); interval 0 turns it off.
type periodicVerify struct {
	interval time.Duration
	sample   int
	guard    guardFlags // --slot, --relay-wait
}

// addPeriodicVerifyFlags registers --verify-interval, --verify-sample,
// --slot and --relay-wait.
func addPeriodicVerifyFlags(f *pflag.FlagSet, pv *periodicVerify) {
	f.DurationVar(&pv.interval, "verify-interval", 0, "compare a random sample of orders with the write side this often, as 'orderstream verify' does (0: off)")
	f.IntVar(&pv.sample, "verify-sample", rebuild.DefaultVerifySample, "orders of the write side each periodic check compares, drawn at random (at least 1)")
	addWriteSideFlags(f, &pv.guard)
}

// start returns the periodic verifier of the daemon of cfg (nil when off),
// its metrics registered in reg, and what releases its connections.
func (pv periodicVerify) start(ctx context.Context, g *globals, cfg consumers.Config, indexPrefix string, reg prometheus.Registerer) (*rebuild.PeriodicVerifier, func(), error) {
	if pv.interval == 0 {
		return nil, func() {}, nil
	}
	if pv.interval < 0 || pv.sample <= 0 {
		return nil, nil, usagef("--verify-interval %s, --verify-sample %d: want an interval >= 0 and a sample >= 1", pv.interval, pv.sample)
	}
	p, err := openProjection(g, cfg.Projection, indexPrefix)
	if err != nil {
		return nil, nil, err
	}
	ws, pool, err := pv.guard.writeSide(ctx, g)
	if err != nil {
		_ = p.Close()
		return nil, nil, err
	}
	release := func() { pool.Close(); _ = p.Close() }
	guard, err := g.guardConfig(ws)
	if err != nil {
		release()
		return nil, nil, err
	}
	v, err := rebuild.NewPeriodicVerifier(p, rebuild.VerifyConfig{
		Guard: guard,
		Group: cfg.Group, Sample: pv.sample,
	}, pv.interval, g.log, reg)
	if err != nil {
		release()
		return nil, nil, usagef("--verify-interval: %v", err)
	}
	return v, release, nil
}
