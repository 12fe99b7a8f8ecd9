package main

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/orderstream/orderstream/consumers"
	"github.com/orderstream/orderstream/internal/rebuild"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"golang.org/x/sync/errgroup"
)

// replayFlags are the settings of `orderstream replay`.
type replayFlags struct {
	mode     string
	from     string
	execute  bool
	group    string
	keep     int
	settle   time.Duration
	progress string
	asJSON   bool
	batch    int
	members  int
	prefix   string
	skipDead bool
	metrics  string     // shadow: --metrics-addr of the progress gauges
	guard    guardFlags // shadow: the checks before the cutover
}

func newReplayCmd(g *globals) *cobra.Command {
	var fl replayFlags
	cmd := &cobra.Command{
		Use:   "replay PROJECTION",
		Short: "Rebuild a read model (analytics, search or all) from offset zero, without downtime by default",
		Long: `--mode shadow (default): builds generation N+1 (new ClickHouse tables, a new
search index) beside the serving generation N with a consumer group of its
own, orderstream-<projection>-g<N+1>, reading the topic from offset zero in
strict mode: an event that cannot be applied stops the rebuild and names its
partition and offset (the daemons send such events to the DLQ instead). With
--skip-dead-lettered, the records the daemons already dead-lettered (or
parked behind a dead letter) at the same partition and offset, and not
re-driven since, are skipped and listed (partition, offset, event id,
reason); without it such a record stops the rebuild, which says so.
Readers keep getting answers from N meanwhile. The running daemon ('orderstream
consume', generation following) writes new events to N+1 too, so nothing
arriving during the rebuild is missed. Once the group reached the end offsets
listed --settle after N+1 was created, every reader is switched at once
(analytics: the stable views Grafana and the API query, by one RENAME TABLE
on 18.16 and one CREATE OR REPLACE VIEW per view on current releases;
search: one atomic alias swap), N is kept current for
'orderstream generations rollback PROJECTION', generations older than the --keep newest
previous ones are dropped, and the temporary group is deleted. No daemon
restart is needed. A failed or interrupted rebuild drops N+1 and its group;
N keeps serving.

--mode in-place: resets the projection's own group (--group, default
orderstream-<projection>) to the earliest offset, or to --from, with
kafka-consumer-groups semantics, and (full replays) clears the serving
generation. It refuses while the group has active members and names them
(stop the daemons first); the read model is empty or partial until the
daemon, restarted, catches up. Without --execute it only prints the plan
(partition: current → new).

Before the cutover the new generation is checked, and the cutover refused
(exit 1, N+1 dropped, N still serving) when any check fails, naming what is
missing: (1) every partition's log start offset was 0 (a shadow rebuild
replays from offset zero only; it accepts no --from); (2) the records the
rebuild wrote equal end − start on every partition; (3) the new generation's
orders and per-order versions equal the write side's (PostgreSQL
orders.version, read in one snapshot once the relay of --slot has relayed
it, waiting up to --relay-wait), except orders whose next event lies past
the rebuild's end offsets (in flight: the daemon applies it). --force cuts
over anyway and logs at WARN what it overrode.

--from OFFSET|TIMESTAMP replays a suffix (in-place only: both sinks are
idempotent, so applying events again is safe; a shadow generation starts
empty and needs every event, so shadow mode refuses --from).

PROJECTION 'all' rebuilds both read models at the same time.`,
		Example: `  orderstream replay analytics                      # shadow rebuild, then cutover
  orderstream replay all --keep 2                   # both, keep two previous generations
  orderstream replay search --mode in-place         # dry run: print the offset plan
  orderstream replay search --mode in-place --execute
  orderstream replay analytics --mode in-place --from 2011-12-01T00:00:00Z --execute
  orderstream generations rollback analytics        # serve the previous generation again`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			names, err := projectionArgs(args[0])
			if err != nil {
				return err
			}
			from, err := rebuild.ParseFrom(fl.from)
			if err != nil {
				return usagef("%v", err)
			}
			switch fl.mode {
			case "shadow":
				if cmd.Flags().Changed("from") {
					return usagef("--from %s: a shadow rebuild fills an empty generation and needs every event from offset zero; replay a suffix into the serving generation with --mode in-place --from %s", fl.from, fl.from)
				}
				if fl.execute || fl.group != "" {
					return usagef("--execute and --group belong to --mode in-place; a shadow rebuild always applies and uses a group of its own")
				}
				return runShadow(cmd.Context(), g, fl, names, cmd.OutOrStdout(), cmd.ErrOrStderr())
			case "in-place":
				if fl.skipDead {
					return usagef("--skip-dead-lettered belongs to --mode shadow: the daemon replaying in place dead-letters and parks as always")
				}
				if fl.guard.force {
					return usagef("--force belongs to --mode shadow: an in-place replay has no cutover")
				}
				if fl.group != "" && len(names) > 1 {
					return usagef("--group names one projection's group: replay one projection at a time with it")
				}
				return runInPlace(cmd.Context(), g, fl, names, from, cmd.OutOrStdout())
			default:
				return usagef("--mode %q: want shadow or in-place", fl.mode)
			}
		},
	}
	f := cmd.Flags()
	f.StringVar(&fl.mode, "mode", "shadow", "shadow (new generation beside the serving one, then cutover) or in-place (reset the group, clear the read model)")
	f.StringVar(&fl.from, "from", "", "in-place: start at this offset (every partition) or RFC 3339 time / YYYY-MM-DD instead of the earliest offset; no clearing then")
	f.BoolVar(&fl.execute, "execute", false, "in-place: apply the plan (default: dry run, print it)")
	f.StringVar(&fl.group, "group", "", "in-place: the projection daemon's consumer group (default orderstream-<projection>)")
	f.IntVar(&fl.keep, "keep", rebuild.DefaultKeep, "shadow: previous generations kept for rollback after the cutover (≥ 1); older ones are dropped (-1 keeps all)")
	f.DurationVar(&fl.settle, "settle", rebuild.DefaultSettle, "shadow: earliest time after creating the new generation at which the end offsets to reach are listed (at least the daemons' generation refresh, 5 s)")
	f.StringVar(&fl.progress, "progress", "auto", "progress on stderr: auto (one updating line on a terminal, else a line per projection every 5 s and per phase), never")
	addJSONFormatFlag(cmd, &fl.asJSON)
	f.IntVar(&fl.batch, "batch-max-records", rebuild.DefaultRebuildBatchRecords, "shadow: records per write to the read model")
	f.IntVar(&fl.members, "members", rebuild.DefaultMembers, "shadow: consumers in the rebuild's group, each writing its share of the partitions (1..64)")
	addGuardFlags(f, &fl.guard)
	addIndexPrefixFlag(f, &fl.prefix)
	f.StringVar(&fl.metrics, "metrics-addr", "", "shadow: host:port serving /metrics with the rebuild's progress per partition (orderstream_rebuild_replayed_records, orderstream_rebuild_end_offset_records) while it runs; empty (default) serves none")
	f.BoolVar(&fl.skipDead, "skip-dead-lettered", false, "shadow: skip (and list) the records the daemons dead-lettered or parked at the same partition and offset and that were not re-driven, instead of stopping at them")
	return cmd
}

func runShadow(ctx context.Context, g *globals, fl replayFlags, names []string, out, errw io.Writer) error {
	if fl.progress != "auto" && fl.progress != "never" {
		return usagef("--progress %q: want auto or never", fl.progress)
	}
	if fl.keep == 0 || fl.keep < -1 {
		return usagef("--keep %d: want 1 or more previous generations kept for rollback, or -1 to keep all (drop one deliberately with `orderstream generations drop PROJECTION N`)", fl.keep)
	}
	if fl.batch < 0 {
		return usagef("--batch-max-records %d: want 1 or more (0: %d)", fl.batch, rebuild.DefaultRebuildBatchRecords)
	}
	if fl.members < 0 || fl.members > 64 {
		return usagef("--members %d: want 1..64 (0: %d)", fl.members, rebuild.DefaultMembers)
	}
	if fl.settle < 0 {
		return usagef("--settle %s: must not be negative", fl.settle)
	}
	kopts, err := g.kafkaOpts()
	if err != nil {
		return err
	}
	ws, pool, err := fl.guard.writeSide(ctx, g)
	if err != nil {
		return err
	}
	defer pool.Close()
	pr := newProgressPrinter(errw, fl.progress)
	reg := prometheus.NewRegistry()
	pm, err := rebuild.NewProgressMetrics(reg)
	if err != nil {
		return err
	}
	progress := func(p rebuild.Progress) { pr.update(p); pm.Update(p) }
	return runWithMetrics(ctx, fl.metrics, promhttp.HandlerFor(reg, promhttp.HandlerOpts{}), func(ctx context.Context) error {
		return runShadows(ctx, g, fl, names, ws, kopts, pr, progress, out)
	})
}

// runShadows runs the shadow rebuilds of names at the same time, reading
// the topic with kopts, and prints their results.
func runShadows(ctx context.Context, g *globals, fl replayFlags, names []string, ws rebuild.WriteSide, kopts []kgo.Opt, pr *progressPrinter,
	progress func(rebuild.Progress), out io.Writer) error {
	results := make([]rebuild.Result, len(names))
	eg, ectx := errgroup.WithContext(ctx)
	for i, name := range names {
		eg.Go(func() error {
			p, err := openProjection(g, name, fl.prefix)
			if err != nil {
				return err
			}
			defer p.Close()
			res, err := rebuild.Shadow(ectx, p, rebuild.ShadowConfig{
				Brokers: g.conn.Kafka.Brokers, ClientOpts: kopts, Topic: g.topic, Keep: fl.keep, Settle: fl.settle,
				BatchMaxRecords: fl.batch, Members: fl.members, Progress: progress, SkipDeadLettered: fl.skipDead,
				WriteSide: ws, Force: fl.guard.force,
			}, g.log)
			if err != nil {
				return fmt.Errorf("%s: %w", name, err)
			}
			results[i] = res
			return nil
		})
	}
	err := eg.Wait()
	pr.finish()
	if err != nil {
		return err
	}
	if fl.asJSON {
		return writeJSON(out, results)
	}
	for _, r := range results {
		if len(r.Forced) > 0 {
			fmt.Fprintf(out, "%s: generation %d serving, cutover FORCED over failed checks:\n  %s\n", r.Projection, r.Generation, strings.Join(r.Forced, "\n  "))
			fmt.Fprintf(out, "  %d events replayed in %s (%.0f events/s)\n", r.Events, r.Duration.Round(time.Millisecond), r.Rate())
		} else {
			fmt.Fprintf(out, "%s: generation %d serving; %d events replayed from offset zero in %s (%.0f events/s)\n",
				r.Projection, r.Generation, r.Events, r.Duration.Round(time.Millisecond), r.Rate())
		}
		for _, e := range r.Skipped {
			fmt.Fprintf(out, "  skipped (dead-lettered by %s): partition %d offset %d event %s (%s): %s\n",
				e.Group, e.SourcePartition, e.SourceOffset, e.EventID, e.Kind, oneLine(e.Error, 160))
		}
		if r.Previous != 0 {
			fmt.Fprintf(out, "  generation %d kept for rollback: orderstream generations rollback %s\n", r.Previous, r.Projection)
		}
		if len(r.Dropped) > 0 {
			fmt.Fprintf(out, "  dropped by --keep %d: generation(s) %s\n", fl.keep, gensStr(r.Dropped))
		}
	}
	return nil
}

func runInPlace(ctx context.Context, g *globals, fl replayFlags, names []string, from rebuild.From, out io.Writer) error {
	kcl, err := g.kafkaClient()
	if err != nil {
		return err
	}
	defer kcl.Close()
	adm := kadm.NewClient(kcl)
	var plans []rebuild.Plan
	for _, name := range names {
		p, err := openProjection(g, name, fl.prefix)
		if err != nil {
			return err
		}
		group := fl.group
		if group == "" {
			group = "orderstream-" + name
		}
		plan, err := rebuild.PlanInPlace(ctx, adm, p, g.topic, group, from)
		if err == nil && fl.execute {
			err = rebuild.ExecuteInPlace(ctx, adm, p, plan)
		}
		_ = p.Close()
		if err != nil {
			return fmt.Errorf("in-place replay of %s: %w", name, err)
		}
		plans = append(plans, plan)
	}
	if fl.asJSON {
		return writeJSON(out, plans)
	}
	for _, plan := range plans {
		verb := "would reset"
		if fl.execute {
			verb = "reset"
		}
		fmt.Fprintf(out, "%s: %s the offsets of group %s on topic %s to %s:\n", plan.Projection, verb, plan.Group, plan.Topic, plan.From)
		for _, e := range plan.Partitions {
			cur := "-"
			if e.Current >= 0 {
				cur = strconv.FormatInt(e.Current, 10)
			}
			fmt.Fprintf(out, "  partition %d: %s → %d\n", e.Partition, cur, e.New)
		}
		if plan.Blocked != nil {
			fmt.Fprintf(out, "  --execute would refuse now: %v\n", plan.Blocked)
		}
		switch {
		case plan.Clear && fl.execute:
			fmt.Fprintf(out, "  generation %d cleared; start `orderstream consume %s` to rebuild it\n", plan.Generation, plan.Projection)
		case plan.Clear:
			fmt.Fprintf(out, "  and would clear generation %d (serving) before the daemon replays into it\n", plan.Generation)
		case fl.execute:
			fmt.Fprintf(out, "  generation %d kept as it is (partial replay; the sink is idempotent); start `orderstream consume %s`\n", plan.Generation, plan.Projection)
		}
	}
	if !fl.execute {
		fmt.Fprintln(out, "dry run: nothing changed; add --execute to apply")
	}
	return nil
}

// progressPrinter shows the progress of one or more rebuilds: one line
// rewritten in place on a terminal, else a line per rebuild every 5 s and
// on each phase change. Safe for concurrent use.
type progressPrinter struct {
	w     io.Writer
	tty   bool
	off   bool
	mu    sync.Mutex
	last  map[string]rebuild.Progress
	shown map[string]time.Time
	order []string
}

func newProgressPrinter(w io.Writer, mode string) *progressPrinter {
	return &progressPrinter{w: w, tty: isTTY(w), off: mode == "never",
		last: map[string]rebuild.Progress{}, shown: map[string]time.Time{}}
}

func (p *progressPrinter) update(pg rebuild.Progress) {
	if p.off {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	prev, seen := p.last[pg.Projection]
	if !seen {
		p.order = append(p.order, pg.Projection)
	}
	p.last[pg.Projection] = pg
	if p.tty {
		parts := make([]string, 0, len(p.order))
		for _, name := range p.order {
			parts = append(parts, progressLine(p.last[name], false))
		}
		fmt.Fprintf(p.w, "\r\033[K%s", strings.Join(parts, " | "))
		return
	}
	if seen && prev.Phase == pg.Phase && time.Since(p.shown[pg.Projection]) < 5*time.Second {
		return
	}
	p.shown[pg.Projection] = time.Now()
	fmt.Fprintln(p.w, progressLine(pg, true))
}

func (p *progressPrinter) finish() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.tty && len(p.order) > 0 {
		fmt.Fprintln(p.w)
	}
}

// progressLine formats one rebuild's progress; long adds the lag of every
// partition.
func progressLine(pg rebuild.Progress, long bool) string {
	pct := 100.0
	if pg.Total > 0 {
		pct = 100 * float64(pg.Processed) / float64(pg.Total)
	}
	eta := "-"
	if pg.ETA > 0 {
		eta = pg.ETA.Round(time.Second).String()
	}
	s := fmt.Sprintf("%s g%d %s %5.1f%% %d/%d events %.0f events/s ETA %s", pg.Projection, pg.Generation, pg.Phase,
		pct, pg.Processed, pg.Total, pg.Rate, eta)
	if !long {
		var worst consumers.PartitionLag
		for _, pl := range pg.Partitions {
			if pl.Lag > worst.Lag {
				worst = pl
			}
		}
		if worst.Lag > 0 {
			s += fmt.Sprintf(" (max lag p%d=%d)", worst.Partition, worst.Lag)
		}
		return s
	}
	if len(pg.Partitions) > 0 {
		lags := make([]string, len(pg.Partitions))
		for i, pl := range pg.Partitions {
			lags[i] = fmt.Sprintf("%d:%d", pl.Partition, pl.Lag)
		}
		s += " lag " + strings.Join(lags, " ")
	}
	return s
}
