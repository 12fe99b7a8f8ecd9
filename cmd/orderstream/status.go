package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/orderstream/orderstream/consumers"
	"github.com/orderstream/orderstream/internal/status"
	"github.com/orderstream/orderstream/producer/relay"
	"github.com/orderstream/orderstream/projections"
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
	groups          map[string]*string // read model → its daemon's group (--<name>-group)
	slot            string
	checkRelay      bool
	maxLag          int64
	maxStaleness    time.Duration
	maxSlotLagBytes int64
	timeout         time.Duration
	indexPrefix     string
}

func newStatusCmd(g *globals) *cobra.Command {
	fl := statusFlags{groups: map[string]*string{}}
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
				if _, err := lookupReadModel(p); err != nil {
					return usagef("--projections: %v", err)
				}
			}
			if fl.wait < 0 || fl.interval <= 0 || fl.timeout <= 0 {
				return usagef("--wait must not be negative; --interval and --timeout must be positive")
			}
			switch {
			case fl.maxLag < 0:
				return usagef("--max-lag %d: want 0 or more records", fl.maxLag)
			case fl.maxStaleness < 0:
				return usagef("--max-staleness %s: want 0 or more", fl.maxStaleness)
			case fl.maxSlotLagBytes < 0:
				return usagef("--max-slot-lag-bytes %d: want 0 or more bytes", fl.maxSlotLagBytes)
			}
			return runStatus(cmd.Context(), g, fl, cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	f := cmd.Flags()
	addJSONFormatFlag(cmd, &fl.asJSON)
	f.DurationVar(&fl.wait, "wait", 0, "poll until the relay and every projection caught up and are healthy, failing after this long (0: report once)")
	f.DurationVar(&fl.interval, "interval", 2*time.Second, "poll interval of --wait")
	f.StringSliceVar(&fl.projections, "projections", readModelNames(), "projections to report, comma-separated")
	addGroupFlags(f, fl.groups, "")
	f.StringVar(&fl.slot, "slot", relay.DefaultSlot, "replication slot (and poll cursor name) of the relay")
	f.BoolVar(&fl.checkRelay, "relay", true, "report the relay (needs --pg-url); --relay=false skips it")
	f.Int64Var(&fl.maxLag, "max-lag", consumers.DefaultReadyLag, "largest healthy lag of a group, in records")
	f.DurationVar(&fl.maxStaleness, "max-staleness", 5*time.Minute, "largest healthy age of the oldest unprocessed event")
	f.Int64Var(&fl.maxSlotLagBytes, "max-slot-lag-bytes", 1<<30, "largest healthy WAL, in bytes, the relay's slot may pin")
	f.DurationVar(&fl.timeout, "timeout", 10*time.Second, "bound of each service's checks per report")
	addIndexPrefixFlag(f, &fl.indexPrefix)
	return cmd
}

// Report is the JSON form of `orderstream status` (status.Report).
type Report = status.Report

// statusEnv is the clients one status run reuses across polls.
type statusEnv struct {
	kcl   *kgo.Client
	pool  *pgxpool.Pool
	projs []projections.ReadModel
	insp  *status.Inspector
}

func runStatus(ctx context.Context, g *globals, fl statusFlags, out, errw io.Writer) error {
	env, err := newStatusEnv(ctx, g, fl)
	if err != nil {
		return err
	}
	defer env.close()
	if fl.wait == 0 {
		r := env.insp.Report(ctx, nil)
		if err := printReport(out, r, fl.asJSON); err != nil {
			return err
		}
		if !r.Healthy {
			return fmt.Errorf("unhealthy: %d problem(s), listed above", len(r.Problems))
		}
		return nil
	}

	deadline := time.Now().Add(fl.wait)
	w := &status.Wait{}
	tty := isTTY(errw)
	var lastLine time.Time
	for {
		r := env.insp.Report(ctx, w)
		if r.CaughtUp && r.Healthy {
			return printReport(out, r, fl.asJSON)
		}
		if ctx.Err() != nil || !time.Now().Before(deadline) {
			_ = printReport(out, r, fl.asJSON)
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return fmt.Errorf("not caught up and healthy after %s: %s", fl.wait, strings.Join(status.WaitReasons(r), "; "))
		}
		line := fmt.Sprintf("waiting (%s left): %s", time.Until(deadline).Round(time.Second), strings.Join(status.WaitReasons(r), "; "))
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

func newStatusEnv(ctx context.Context, g *globals, fl statusFlags) (*statusEnv, error) {
	env := &statusEnv{}
	var err error
	kopts, err := g.kafkaOpts()
	if err != nil {
		return nil, err
	}
	env.kcl, err = g.kafkaClient()
	if err != nil {
		return nil, err
	}
	if fl.checkRelay {
		env.pool, err = g.pgPool(ctx)
		if err != nil {
			env.close()
			return nil, err
		}
	}
	cfg := status.Config{Topic: g.topic, Brokers: g.conn.Kafka.Brokers, ClientOpts: kopts, Slot: fl.slot, Timeout: fl.timeout,
		Limits: status.Limits{MaxLag: fl.maxLag, MaxStaleness: fl.maxStaleness, MaxSlotLagBytes: fl.maxSlotLagBytes}}
	for _, name := range fl.projections {
		p, err := openProjection(g, name, fl.indexPrefix)
		if err != nil {
			env.close()
			return nil, err
		}
		env.projs = append(env.projs, p)
		cfg.Projections = append(cfg.Projections, status.Projection{Name: name, Group: *fl.groups[name], ReadModel: p})
	}
	env.insp, err = status.New(cfg, kadm.NewClient(env.kcl), env.pool)
	if err != nil {
		env.close()
		return nil, err
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
	if len(r.Replication) > 0 {
		fmt.Fprintf(w, "warning: topic %s is under-replicated for its cluster (losing a broker may lose events): %s\n", r.Topic, strings.Join(r.Replication, "; "))
	}
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
