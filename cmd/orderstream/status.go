package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/orderstream/orderstream/consumers"
	"github.com/orderstream/orderstream/internal/rebuild"
	"github.com/orderstream/orderstream/producer/relay"
	"github.com/orderstream/orderstream/producer/topic"
	"github.com/orderstream/orderstream/projections/analytics"
	"github.com/orderstream/orderstream/projections/search"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"golang.org/x/term"
)

// statusFlags are the settings of `orderstream status`.
type statusFlags struct {
	asJSON          bool
	wait            time.Duration
	interval        time.Duration
	projections     []string
	analyticsGroup  string
	searchGroup     string
	slot            string
	checkRelay      bool
	maxLag          int64
	maxStaleness    time.Duration
	maxSlotLagBytes int64
	timeout         time.Duration
	indexPrefix     string
}

func newStatusCmd(g *globals) *cobra.Command {
	var fl statusFlags
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Health of the relay and of each projection: generations, group, members, lag, staleness, DLQ",
		Long: `Reports, per projection (analytics, search): the serving generation and any
generation being built, the consumer group with its members (kadm
DescribeGroups), the lag of every partition (committed offset vs end
offset), the time of the last processed event and the staleness (age of the
oldest event not processed yet; Kafka record timestamps), the events
processed (committed offsets minus log start) and those dead-lettered by the
group (records of <topic>.dlq with its dlq_group header).

For the relay: the mode (wal or poll), the checkpoint, whether the
replication slot exists and is active, the WAL the slot pins (bytes), the
outbox row count beside the topic's record count, and in poll mode the
outbox rows not yet in Kafka.

Exit status 1 when unhealthy: the topic cannot be replayed from offset zero
(finite retention.ms or retention.bytes, compaction, or a partition whose
log start offset is above 0), the relay never ran, its slot is missing or
inactive, its checkpoint is not streaming, it pins more than
--max-slot-lag-bytes; a group without members, a lag above --max-lag
records, a staleness above --max-staleness, no serving generation, or a
service that does not answer. The reasons are printed.

--wait DURATION polls every --interval until everything is caught up —
every outbox row committed before the wait began is in Kafka (WAL: the
relay's confirmed LSN passed the WAL position of that moment; poll: no row
after the cursor), then every projection group committed up to the end
offsets listed once the relay had caught up — and healthy; it fails at the
deadline with the reasons.`,
		Example: `  orderstream status
  orderstream status --json
  orderstream status --wait 10m          # after an import: until both read models caught up
  orderstream status --projections analytics --max-lag 0`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			for _, p := range fl.projections {
				if _, ok := projections[p]; !ok {
					return usagef("--projections: unknown projection %q: want analytics and/or search", p)
				}
			}
			if fl.wait < 0 || fl.interval <= 0 || fl.timeout <= 0 {
				return usagef("--wait must not be negative; --interval and --timeout must be positive")
			}
			return runStatus(cmd.Context(), g, fl, cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	f := cmd.Flags()
	f.BoolVar(&fl.asJSON, "json", false, "print the report as JSON")
	f.DurationVar(&fl.wait, "wait", 0, "poll until the relay and every projection caught up and are healthy, failing after this long (0: report once)")
	f.DurationVar(&fl.interval, "interval", 2*time.Second, "poll interval of --wait")
	f.StringSliceVar(&fl.projections, "projections", []string{"analytics", "search"}, "projections to report, comma-separated")
	f.StringVar(&fl.analyticsGroup, "analytics-group", "orderstream-analytics", "consumer group of the analytics daemon")
	f.StringVar(&fl.searchGroup, "search-group", "orderstream-search", "consumer group of the search daemon")
	f.StringVar(&fl.slot, "slot", relay.DefaultSlot, "replication slot (and poll cursor name) of the relay")
	f.BoolVar(&fl.checkRelay, "relay", true, "report the relay (needs --pg-url); --relay=false skips it")
	f.Int64Var(&fl.maxLag, "max-lag", consumers.DefaultReadyLag, "largest healthy lag of a group, in records")
	f.DurationVar(&fl.maxStaleness, "max-staleness", 5*time.Minute, "largest healthy age of the oldest unprocessed event")
	f.Int64Var(&fl.maxSlotLagBytes, "max-slot-lag-bytes", 1<<30, "largest healthy WAL, in bytes, the relay's slot may pin")
	f.DurationVar(&fl.timeout, "timeout", 10*time.Second, "bound of each service's checks per report")
	addIndexPrefixFlag(f, &fl.indexPrefix)
	return cmd
}

// Report is the JSON form of `orderstream status`.
type Report struct {
	Time    time.Time `json:"time"`
	Topic   string    `json:"topic"`
	Healthy bool      `json:"healthy"`
	// CaughtUp: every group committed up to the topic's end offsets (with
	// --wait: those listed once the relay passed the WAL position of the
	// wait's start).
	CaughtUp bool     `json:"caught_up"`
	Problems []string `json:"problems"`
	Records  int64    `json:"kafka_records"` // records the topic holds (end − start, summed)
	// Replayable: the topic can be replayed from offset zero
	// (topic.CheckReplayable: infinite retention, no compaction, every log
	// start offset 0); when false, Problems says why.
	Replayable  bool               `json:"replayable"`
	Relay       *relay.Inspection  `json:"relay,omitempty"`
	Projections []ProjectionReport `json:"projections"`
}

// ProjectionReport is one projection in a Report.
type ProjectionReport struct {
	Name             string               `json:"projection"`
	Serving          uint32               `json:"serving_generation"`
	Building         []uint32             `json:"building_generations"`
	Generations      []rebuild.Generation `json:"generations"`
	Group            rebuild.Group        `json:"consumer_group"`
	DLQ              int64                `json:"dlq_records"`
	LastEvent        time.Time            `json:"last_event_time,omitzero"`
	StalenessSeconds float64              `json:"staleness_seconds"`
	Errors           []string             `json:"errors,omitempty"`
}

// statusEnv is the clients one status run reuses across polls.
type statusEnv struct {
	g     *globals
	fl    statusFlags
	kcl   *kgo.Client
	adm   *kadm.Client
	pool  *pgxpool.Pool
	projs map[string]rebuild.Projection
}

func runStatus(ctx context.Context, g *globals, fl statusFlags, out, errw io.Writer) error {
	env, err := newStatusEnv(ctx, g, fl)
	if err != nil {
		return err
	}
	defer env.close()
	if fl.wait == 0 {
		r := env.report(ctx, nil)
		if err := printReport(out, r, fl.asJSON); err != nil {
			return err
		}
		if !r.Healthy {
			return fmt.Errorf("unhealthy: %d problem(s), listed above", len(r.Problems))
		}
		return nil
	}

	deadline := time.Now().Add(fl.wait)
	w := &waitState{}
	tty := isTTY(errw)
	var lastLine time.Time
	for {
		r := env.report(ctx, w)
		if r.CaughtUp && r.Healthy {
			return printReport(out, r, fl.asJSON)
		}
		if ctx.Err() != nil || !time.Now().Before(deadline) {
			_ = printReport(out, r, fl.asJSON)
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return fmt.Errorf("not caught up and healthy after %s: %s", fl.wait, strings.Join(waitReasons(r), "; "))
		}
		line := fmt.Sprintf("waiting (%s left): %s", time.Until(deadline).Round(time.Second), strings.Join(waitReasons(r), "; "))
		switch {
		case tty:
			fmt.Fprintf(errw, "\r\033[K%s", line)
		case time.Since(lastLine) >= 10*time.Second: // a log line every 10 s
			fmt.Fprintln(errw, line)
			lastLine = time.Now()
		}
		select {
		case <-ctx.Done():
		case <-time.After(min(fl.interval, time.Until(deadline))):
		}
		if tty {
			fmt.Fprint(errw, "\r\033[K")
		}
	}
}

// waitState carries the targets of --wait across polls: the WAL position
// when the wait began and the topic's end offsets once the relay caught up
// with it.
type waitState struct {
	targetLSN  pglogrepl.LSN
	haveLSN    bool
	targetEnds map[int32]int64
}

// waitReasons says what is not caught up or not healthy yet.
func waitReasons(r Report) []string {
	var out []string
	if r.Relay != nil && !r.CaughtUp {
		out = append(out, relaySummary(r.Relay))
	}
	for _, p := range r.Projections {
		out = append(out, fmt.Sprintf("%s lag %d", p.Name, p.Group.Lag))
	}
	out = append(out, r.Problems...)
	return out
}

func relaySummary(r *relay.Inspection) string {
	switch r.Mode {
	case relay.ModeWAL:
		return fmt.Sprintf("relay %s confirmed %s of %s", r.CheckpointState, r.ConfirmedLSN, r.CurrentLSN)
	case relay.ModePoll:
		return fmt.Sprintf("relay (poll) %d outbox rows not in Kafka", r.Unrelayed)
	default:
		return "relay not started"
	}
}

func newStatusEnv(ctx context.Context, g *globals, fl statusFlags) (*statusEnv, error) {
	env := &statusEnv{g: g, fl: fl, projs: map[string]rebuild.Projection{}}
	var err error
	env.kcl, err = kgo.NewClient(kgo.SeedBrokers(g.brokers...))
	if err != nil {
		return nil, usagef("--kafka-brokers: %v", err)
	}
	env.adm = kadm.NewClient(env.kcl)
	if fl.checkRelay {
		env.pool, err = pgxpool.New(ctx, g.pgURL)
		if err != nil {
			env.close()
			return nil, usagef("--pg-url: %v", err)
		}
	}
	for _, name := range fl.projections {
		p, err := openProjection(g, name, fl.indexPrefix)
		if err != nil {
			env.close()
			return nil, err
		}
		env.projs[name] = p
	}
	return env, nil
}

func (e *statusEnv) close() {
	for _, p := range e.projs {
		_ = p.Close()
	}
	if e.pool != nil {
		e.pool.Close()
	}
	if e.kcl != nil {
		e.kcl.Close()
	}
}

// openProjection returns the rebuild adapter of the named read model,
// configured by the global flags; indexPrefix names the search read model's
// indexes and aliases.
func openProjection(g *globals, name, indexPrefix string) (rebuild.Projection, error) {
	switch name {
	case "analytics":
		return rebuild.NewAnalytics(analytics.Config{Addr: g.clickhouse, Database: g.chDatabase}, g.log)
	case "search":
		cfg, err := searchConfig(g, indexPrefix)
		if err != nil {
			return nil, err
		}
		return rebuild.NewSearch(cfg, g.log)
	default:
		return nil, usagef("unknown projection %q: want analytics or search", name)
	}
}

func (e *statusEnv) group(name string) string {
	if name == "search" {
		return e.fl.searchGroup
	}
	return e.fl.analyticsGroup
}

// report gathers one Report. Every failure becomes a problem, never an
// error: an unreachable service is exactly what monitoring wants to see.
// With w (--wait) it also decides CaughtUp.
func (e *statusEnv) report(ctx context.Context, w *waitState) Report {
	now := time.Now().UTC()
	r := Report{Time: now, Topic: e.g.topic, Problems: []string{}, Projections: []ProjectionReport{}}
	bounded := func() (context.Context, context.CancelFunc) { return context.WithTimeout(ctx, e.fl.timeout) }
	problem := func(format string, args ...any) { r.Problems = append(r.Problems, fmt.Sprintf(format, args...)) }

	relayCaughtUp := true
	if e.pool != nil {
		c, cancel := bounded()
		rs, err := relay.Inspect(c, e.pool, e.fl.slot)
		cancel()
		relayCaughtUp = false
		if err != nil {
			problem("relay: %v", err)
		} else {
			r.Relay = &rs
			relayProblems(rs, e.fl, problem)
			if w != nil && !w.haveLSN {
				w.targetLSN, w.haveLSN = rs.Current(), true
			}
			relayCaughtUp = w == nil || rs.RelayedUpTo(w.targetLSN)
		}
	}

	c, cancel := bounded()
	starts, ends, err := rebuild.TopicOffsets(c, e.adm, e.g.topic)
	cancel()
	if err != nil {
		problem("kafka: %v", err)
	} else {
		for p, end := range ends {
			r.Records += end - starts[p]
		}
	}
	if err == nil {
		c, cancel := bounded()
		rp, err := topic.CheckReplayable(c, e.adm, e.g.topic)
		cancel()
		switch {
		case err != nil:
			problem("kafka: %v", err)
		case !rp.Replayable():
			problem("topic %s cannot be replayed from offset zero (a rebuild would miss events): %s", e.g.topic, strings.Join(rp.Problems(), "; "))
		default:
			r.Replayable = true
		}
	}
	if w != nil && relayCaughtUp && w.targetEnds == nil && ends != nil {
		w.targetEnds = ends
	}

	var dlq rebuild.DLQCounts
	if err == nil {
		c, cancel := bounded()
		dlq, err = rebuild.CountDLQ(c, e.adm, e.g.brokers, consumers.DLQTopicFor(e.g.topic))
		cancel()
		if err != nil {
			problem("dlq: %v", err)
		}
	}

	// Without --wait: caught up when every group reached the current ends.
	targetEnds := ends
	if w != nil {
		targetEnds = w.targetEnds
	}
	caughtUp := targetEnds != nil && len(r.Problems) == 0
	names := slices.Sorted(func(yield func(string) bool) {
		for n := range e.projs {
			if !yield(n) {
				return
			}
		}
	})
	for _, name := range names {
		pr := e.projection(ctx, name, now, ends != nil, dlq)
		for _, msg := range pr.Errors {
			problem("%s: %s", name, msg)
		}
		if targetEnds == nil || !pr.Group.CaughtUp(targetEnds) {
			caughtUp = false
		}
		r.Projections = append(r.Projections, pr)
	}
	r.CaughtUp = caughtUp
	r.Healthy = len(r.Problems) == 0
	return r
}

// relayProblems adds what is unhealthy about the relay.
func relayProblems(rs relay.Inspection, fl statusFlags, problem func(string, ...any)) {
	switch rs.Mode {
	case relay.ModeNotStarted:
		problem("relay: never ran with slot %s (no checkpoint, no poll cursor): start `orderstream relay`", rs.Slot)
	case relay.ModeWAL:
		if !rs.SlotExists {
			problem("relay: replication slot %s is missing (the relay stops with ErrSlotLost; see `orderstream relay --help`)", rs.Slot)
		} else if !rs.SlotActive {
			problem("relay: replication slot %s is inactive: no relay is streaming from it", rs.Slot)
		}
		if !rs.Streaming() {
			problem("relay: checkpoint of slot %s is %q, not streaming", rs.Slot, rs.CheckpointState)
		}
		if rs.SlotLagBytes > fl.maxSlotLagBytes {
			problem("relay: slot %s pins %d bytes of WAL (bound %d)", rs.Slot, rs.SlotLagBytes, fl.maxSlotLagBytes)
		}
	case relay.ModePoll:
		if rs.Unrelayed > fl.maxLag {
			problem("relay: %d outbox rows not in Kafka (bound %d)", rs.Unrelayed, fl.maxLag)
		}
	}
}

// projection reports one read model and its group.
func (e *statusEnv) projection(ctx context.Context, name string, now time.Time, topicOK bool, dlq rebuild.DLQCounts) ProjectionReport {
	pr := ProjectionReport{Name: name, Building: []uint32{}, Generations: []rebuild.Generation{}}
	bounded := func() (context.Context, context.CancelFunc) { return context.WithTimeout(ctx, e.fl.timeout) }
	errorf := func(format string, args ...any) { pr.Errors = append(pr.Errors, fmt.Sprintf(format, args...)) }

	c, cancel := bounded()
	gens, err := e.projs[name].Generations(c)
	cancel()
	switch {
	case err != nil:
		errorf("read model: %v", err)
	default:
		pr.Generations = gens
		pr.Serving = rebuild.Serving(gens)
		pr.Building = append(pr.Building, rebuild.Building(gens)...)
		if pr.Serving == 0 {
			errorf("no serving generation (start the daemon, or `orderstream %s` setup/migrate)", name)
		}
	}

	if !topicOK {
		pr.Group = rebuild.Group{Group: e.group(name), State: "unknown"}
		return pr
	}
	c, cancel = bounded()
	grp, err := rebuild.InspectGroup(c, e.adm, e.g.topic, e.group(name))
	cancel()
	pr.Group = grp
	if err != nil {
		errorf("group %s: %v", e.group(name), err)
		return pr
	}
	pr.DLQ = dlq.ByGroup[grp.Group]
	if len(grp.Members) == 0 {
		errorf("group %s has no members: no `orderstream consume %s` is running", grp.Group, name)
	}
	if grp.Lag > e.fl.maxLag {
		errorf("group %s lags %d records (bound %d)", grp.Group, grp.Lag, e.fl.maxLag)
	}
	c, cancel = bounded()
	times, err := rebuild.ReadEventTimes(c, e.g.brokers, e.g.topic, grp)
	cancel()
	if err != nil {
		errorf("event times: %v", err)
		return pr
	}
	pr.LastEvent = times.LastProcessed
	st := times.Staleness(now)
	pr.StalenessSeconds = st.Seconds()
	if st > e.fl.maxStaleness {
		errorf("group %s is stale: its oldest unprocessed event waits for %s (bound %s)", grp.Group, st.Round(time.Second), e.fl.maxStaleness)
	}
	return pr
}

// printReport writes r as JSON or as tables.
func printReport(w io.Writer, r Report, asJSON bool) error {
	if asJSON {
		return writeJSON(w, r)
	}
	var b strings.Builder
	if rs := r.Relay; rs != nil {
		fmt.Fprintf(&b, "relay: slot %s, mode %s", rs.Slot, rs.Mode)
		switch rs.Mode {
		case relay.ModeWAL:
			fmt.Fprintf(&b, ", checkpoint %s, slot %s, confirmed %s, current %s, slot lag %s",
				rs.CheckpointState, slotWord(rs), orDash(rs.ConfirmedLSN), rs.CurrentLSN, bytesHuman(rs.SlotLagBytes))
		case relay.ModePoll:
			fmt.Fprintf(&b, ", %d outbox rows not in Kafka", rs.Unrelayed)
		}
		fmt.Fprintf(&b, "; outbox rows %d, topic %s records %d\n\n", rs.OutboxRows, r.Topic, r.Records)
	} else {
		fmt.Fprintf(&b, "topic %s: %d records\n\n", r.Topic, r.Records)
	}
	if _, err := io.WriteString(w, b.String()); err != nil {
		return err
	}

	header := []string{"projection", "serving", "building", "group", "state", "members", "lag", "processed", "dlq", "last_event", "staleness"}
	var rows [][]string
	for _, p := range r.Projections {
		rows = append(rows, []string{p.Name, genStr(p.Serving), gensStr(p.Building), p.Group.Group, p.Group.State,
			strconv.Itoa(len(p.Group.Members)), strconv.FormatInt(p.Group.Lag, 10), strconv.FormatInt(p.Group.Processed, 10),
			strconv.FormatInt(p.DLQ, 10), timeStr(p.LastEvent), (time.Duration(p.StalenessSeconds * float64(time.Second))).Round(time.Second).String()})
	}
	if err := writeTable(w, header, rows, map[int]bool{1: true, 5: true, 6: true, 7: true, 8: true}); err != nil {
		return err
	}

	fmt.Fprintln(w)
	header = []string{"projection", "partition", "start", "committed", "end", "lag"}
	rows = nil
	for _, p := range r.Projections {
		for _, pl := range p.Group.Partitions {
			committed := "-"
			if pl.Committed >= 0 {
				committed = strconv.FormatInt(pl.Committed, 10)
			}
			rows = append(rows, []string{p.Name, strconv.Itoa(int(pl.Partition)), strconv.FormatInt(pl.Start, 10), committed,
				strconv.FormatInt(pl.End, 10), strconv.FormatInt(pl.Lag, 10)})
		}
	}
	if err := writeTable(w, header, rows, map[int]bool{1: true, 2: true, 3: true, 4: true, 5: true}); err != nil {
		return err
	}

	rows = nil
	for _, p := range r.Projections {
		for _, m := range p.Group.Members {
			rows = append(rows, []string{p.Name, m.ID, m.ClientID, m.Host, partsStr(m.Partitions)})
		}
	}
	if len(rows) > 0 {
		fmt.Fprintln(w)
		if err := writeTable(w, []string{"projection", "member", "client", "host", "partitions"}, rows, nil); err != nil {
			return err
		}
	}

	fmt.Fprintln(w)
	if r.Healthy {
		_, err := fmt.Fprintln(w, "healthy")
		return err
	}
	_, err := fmt.Fprintf(w, "UNHEALTHY:\n  %s\n", strings.Join(r.Problems, "\n  "))
	return err
}

func slotWord(rs *relay.Inspection) string {
	switch {
	case !rs.SlotExists:
		return "MISSING"
	case rs.SlotActive:
		return "active"
	default:
		return "inactive"
	}
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func genStr(n uint32) string {
	if n == 0 {
		return "-"
	}
	return strconv.FormatUint(uint64(n), 10)
}

func gensStr(ns []uint32) string {
	if len(ns) == 0 {
		return "-"
	}
	parts := make([]string, len(ns))
	for i, n := range ns {
		parts[i] = genStr(n)
	}
	return strings.Join(parts, ",")
}

func partsStr(ps []int32) string {
	parts := make([]string, len(ps))
	for i, p := range ps {
		parts[i] = strconv.Itoa(int(p))
	}
	return strings.Join(parts, ",")
}

func timeStr(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}

// bytesHuman prints n bytes in binary units (KiB, MiB, GiB).
func bytesHuman(n int64) string {
	const unit = 1024
	if n < unit {
		return strconv.FormatInt(n, 10) + " B"
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit && exp < 3; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGT"[exp])
}

// isTTY reports whether w is a terminal.
func isTTY(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// addIndexPrefixFlag registers --index-prefix as 'orderstream search' has it.
func addIndexPrefixFlag(f *pflag.FlagSet, p *string) {
	f.StringVar(p, "index-prefix", search.DefaultPrefix, "name prefix of the read model's indexes (<prefix>_v<n>) and aliases (<prefix>, <prefix>_write)")
}
