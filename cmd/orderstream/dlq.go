package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"text/tabwriter"
	"time"

	"github.com/orderstream/orderstream/consumers"
	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

func newDLQCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "dlq",
		Short: "Inspect and re-drive the dead-letter topic of the projections",
		Long: `Records that a projection could not apply (not a valid event, or rejected
for good by the read model) are copied to <topic>.dlq with headers saying
where they came from, why, and which consumer group gave up on them; the
later events of the same order follow them there, parked, until they are
re-driven. 'dlq list' shows them; 'dlq replay' applies them, per group,
through that group's own read model once the cause is fixed.`,
	}
	cmd.AddCommand(newDLQListCmd(g), newDLQReplayCmd(g))
	return cmd
}

func newDLQListCmd(g *globals) *cobra.Command {
	var (
		topic  string
		asJSON bool
		limit  int
	)
	cmd := &cobra.Command{
		Use:   "list",
		Short: "Print the records of the dead-letter topic",
		Long: `Reads the dead-letter topic from its start to its current end (it does not
wait for new records) and prints, per record: its DLQ offset, the source
topic/partition/offset, the error, the attempts, the first failure time, the
event id and type, the order id, the group that gave up on it, its kind
(decode, rejected, parked) and its state (pending, or re-driven). With
--format json, one JSON object per line.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if topic == "" {
				topic = consumers.DLQTopicFor(g.topic)
			}
			if limit < 0 {
				return usagef("--limit %d: want 0 (no limit) or more", limit)
			}
			out := cmd.OutOrStdout()
			var tw *tabwriter.Writer
			if !asJSON {
				tw = tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "DLQ OFFSET\tSOURCE\tGROUP\tKIND\tSTATE\tERROR\tATTEMPTS\tFIRST FAILURE\tEVENT ID\tEVENT TYPE\tORDER ID")
			}
			kopts, err := g.kafkaOpts()
			if err != nil {
				return err
			}
			st, err := consumers.ReadDLQState(cmd.Context(), g.conn.Kafka.Brokers, topic, "", false, kopts...)
			if err != nil {
				return err
			}
			n := 0
			err = readDLQ(cmd.Context(), kopts, topic, func(r *kgo.Record) (bool, error) {
				if !consumers.IsDeadLetter(r) {
					return true, nil // a re-drive marker
				}
				e, perr := consumers.ParseDLQ(r)
				if perr != nil {
					g.log.Warn("not a dead-letter record of this runtime", "err", perr)
				}
				n++
				state := "pending"
				if st.Redriven(e.Group, e.Partition, e.OrderID, e.Offset) {
					state = "re-driven"
				}
				if asJSON {
					b, err := json.Marshal(struct {
						consumers.DLQEntry
						State string `json:"state"`
					}{e, state})
					if err != nil {
						return false, err
					}
					fmt.Fprintln(out, string(b))
				} else {
					ff := ""
					if !e.FirstFailure.IsZero() {
						ff = e.FirstFailure.Format(time.RFC3339)
					}
					fmt.Fprintf(tw, "%d/%d\t%s/%d@%d\t%s\t%s\t%s\t%s\t%d\t%s\t%s\t%s\t%s\n", e.Partition, e.Offset,
						e.SourceTopic, e.SourcePartition, e.SourceOffset, e.Group, e.Kind, state, oneLine(e.Error, 120), e.Attempts, ff, e.EventID, e.EventType, e.OrderID)
				}
				return limit == 0 || n < limit, nil
			})
			if tw != nil {
				if ferr := tw.Flush(); ferr != nil {
					err = errors.Join(err, ferr)
				}
				if err == nil {
					fmt.Fprintf(out, "%d record(s) in %s\n", n, topic)
				}
			}
			return err
		},
	}
	f := cmd.Flags()
	f.StringVar(&topic, "dlq-topic", "", "dead-letter topic (default <topic>.dlq)")
	addJSONFormatFlag(cmd, &asJSON)
	f.IntVar(&limit, "limit", 0, "print at most N records (0: all)")
	return cmd
}

func newDLQReplayCmd(g *globals) *cobra.Command {
	var (
		topic  string
		groups []string
		dryRun bool
		asJSON bool
		prefix string
	)
	cmd := &cobra.Command{
		Use:   "replay",
		Short: "Apply the dead letters of each consumer group to that group's own read model",
		Long: `Re-drives, per consumer group (--group, default every group with dead letters
not re-driven yet), the group's dead letters through the group's own read
model (the projection named in the dlq_projection header, following its
serving generation): order by order, the dead letter first, then the records
parked behind it, in their original order. Nothing is written to the events
topic and no other group sees the records again.

After each write the read model acknowledged, a marker (dlq_kind=redriven)
is appended to the dead-letter topic: the group's daemons stop parking the
order, and a second re-drive applies nothing again. A record that still
fails stays dead-lettered with the records behind it (listed as stuck; the
command exits non-zero); the other orders go on. With --dry-run it lists
what it would apply and writes nothing.`,
		Example: `  orderstream dlq replay --dry-run
  orderstream dlq replay --group orderstream-analytics`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if topic == "" {
				topic = consumers.DLQTopicFor(g.topic)
			}
			return redriveGroups(cmd.Context(), g, topic, groups, dryRun, asJSON, prefix, cmd.OutOrStdout())
		},
	}
	f := cmd.Flags()
	f.StringVar(&topic, "dlq-topic", "", "dead-letter topic (default <topic>.dlq)")
	f.StringSliceVar(&groups, "group", nil, "consumer group(s) whose dead letters are re-driven (default: every group with dead letters not re-driven)")
	f.BoolVar(&dryRun, "dry-run", false, "list what would be applied; write nothing")
	addJSONFormatFlag(cmd, &asJSON)
	addIndexPrefixFlag(f, &prefix)
	return cmd
}

// redriveGroups re-drives the dead letters of groups (every group with
// pending dead letters when empty), each through its projection's sink.
func redriveGroups(ctx context.Context, g *globals, topic string, groups []string, dryRun, asJSON bool, prefix string, out io.Writer) error {
	kopts, err := g.kafkaOpts()
	if err != nil {
		return err
	}
	st, err := consumers.ReadDLQState(ctx, g.conn.Kafka.Brokers, topic, "", true, kopts...)
	if err != nil {
		return err
	}
	projection := map[string]string{} // group → projection, from the dead letters
	for _, po := range st.Pending("") {
		if e, perr := consumers.ParseDLQ(po.Records[0]); perr == nil && po.Group != "" {
			projection[po.Group] = e.Projection
		}
	}
	if len(groups) == 0 {
		for gr := range projection {
			groups = append(groups, gr)
		}
		slices.Sort(groups)
	}
	var stuck int
	for _, group := range groups {
		res := consumers.RedriveResult{Group: group, Applied: []consumers.DLQEntry{}, Stuck: []consumers.DLQEntry{}}
		if name, ok := projection[group]; ok {
			res, err = redriveGroup(ctx, g, topic, group, name, dryRun, prefix)
		}
		if err != nil {
			return err
		}
		stuck += len(res.Stuck)
		if asJSON {
			if err := writeJSON(out, res); err != nil {
				return err
			}
			continue
		}
		verb := "re-drove"
		if dryRun {
			verb = "would re-drive"
		}
		for _, e := range res.Applied {
			fmt.Fprintf(out, "%s: %s dlq %d/%d (%s, was %s/%d@%d, event %s, order %s)\n", group, verb,
				e.Partition, e.Offset, e.Kind, e.SourceTopic, e.SourcePartition, e.SourceOffset, e.EventID, e.OrderID)
		}
		for _, e := range res.Stuck {
			fmt.Fprintf(out, "%s: stuck dlq %d/%d (was %s/%d@%d, event %s, order %s): %s\n", group,
				e.Partition, e.Offset, e.SourceTopic, e.SourcePartition, e.SourceOffset, e.EventID, e.OrderID, oneLine(e.Error, 120))
		}
		fmt.Fprintf(out, "%s: %s %d record(s) from %s; %d stuck, %d waiting behind them\n", group, verb, len(res.Applied), topic, len(res.Stuck), res.Waiting)
	}
	if len(groups) == 0 && !asJSON {
		fmt.Fprintf(out, "nothing to re-drive in %s\n", topic)
	}
	if stuck > 0 {
		return fmt.Errorf("%d dead letter(s) failed again and stay dead-lettered with the records behind them; fix the cause (an upgraded binary, a fixed read model) and rerun", stuck)
	}
	return nil
}

// redriveGroup re-drives one group through the sink of its projection.
func redriveGroup(ctx context.Context, g *globals, topic, group, name string, dryRun bool, prefix string) (res consumers.RedriveResult, err error) {
	kopts, err := g.kafkaOpts()
	if err != nil {
		return consumers.RedriveResult{}, err
	}
	cfg := consumers.RedriveConfig{Brokers: g.conn.Kafka.Brokers, ClientOpts: kopts, DLQTopic: topic, Group: group, DryRun: dryRun}
	if _, err := lookupReadModel(name); err != nil {
		return consumers.RedriveResult{}, fmt.Errorf("group %s: its dead letters name projection %q, which this binary does not know (want %s)", group, name, wantReadModel(false))
	}
	var sink consumers.Sink
	if !dryRun {
		s, closer, err := daemonSink(ctx, g, name, "", readModelOptions{indexPrefix: prefix})
		if err != nil {
			return consumers.RedriveResult{}, fmt.Errorf("group %s: %s sink: %w", group, name, err)
		}
		defer func() {
			if cerr := closer.Close(); cerr != nil {
				err = errors.Join(err, fmt.Errorf("group %s: close %s sink: %w", group, name, cerr))
			}
		}()
		sink = s
	}
	res, err = consumers.Redrive(ctx, cfg, sink, g.log)
	if err != nil {
		return res, fmt.Errorf("group %s: %w", group, err)
	}
	return res, nil
}

// readDLQ calls fn for every record of topic from the start up to its end
// offsets as listed when it starts, until fn returns false. kopts reach
// Kafka (globals.kafkaOpts).
func readDLQ(ctx context.Context, kopts []kgo.Opt, topic string, fn func(*kgo.Record) (bool, error)) error {
	cl, err := kgo.NewClient(append(kopts, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))...)
	if err != nil {
		return fmt.Errorf("kafka client: %w", err)
	}
	defer cl.Close()
	ends, err := listEnds(ctx, kadm.NewClient(cl), topic)
	if err != nil {
		return err
	}
	return drain(ctx, cl, ends, nil, fn)
}

// listEnds returns the end offset of every partition of topic.
func listEnds(ctx context.Context, adm *kadm.Client, topic string) (map[int32]int64, error) {
	lo, err := adm.ListEndOffsets(ctx, topic)
	if err != nil {
		return nil, fmt.Errorf("list end offsets of %s: %w", topic, err)
	}
	ends := map[int32]int64{}
	var perr error
	lo.Each(func(o kadm.ListedOffset) {
		if o.Partition < 0 && errors.Is(o.Err, kerr.UnknownTopicOrPartition) {
			return // the topic does not exist: said below
		}
		if o.Err != nil {
			perr = fmt.Errorf("topic %s partition %d: %w", topic, o.Partition, o.Err)
		}
		ends[o.Partition] = o.Offset
	})
	if perr != nil {
		return nil, perr
	}
	if len(ends) == 0 {
		return nil, fmt.Errorf("dead-letter topic %s does not exist (nothing was dead-lettered yet, or --dlq-topic is wrong)", topic)
	}
	return ends, nil
}

// drain polls cl until every partition reached its end offset in ends
// (start offsets, when known, say which partitions are already done).
func drain(ctx context.Context, cl *kgo.Client, ends, starts map[int32]int64, fn func(*kgo.Record) (bool, error)) error {
	pos := map[int32]int64{}
	for p := range ends {
		pos[p] = 0
		if s, ok := starts[p]; ok {
			pos[p] = s
		}
	}
	done := func() bool {
		for p, e := range ends {
			if pos[p] < e {
				return false
			}
		}
		return true
	}
	for !done() {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			return err
		}
		var ferr error
		fs.EachError(func(t string, p int32, err error) {
			ferr = errors.Join(ferr, fmt.Errorf("fetch %s partition %d: %w", t, p, err))
		})
		if ferr != nil {
			return ferr
		}
		for _, r := range fs.Records() {
			if r.Offset >= ends[r.Partition] {
				continue
			}
			pos[r.Partition] = r.Offset + 1
			more, err := fn(r)
			if err != nil || !more {
				return err
			}
		}
	}
	return nil
}

// oneLine shortens s to at most n runes on one line.
func oneLine(s string, n int) string {
	r := []rune(s)
	for i, c := range r {
		if c == '\n' || c == '\t' {
			r[i] = ' '
		}
	}
	if len(r) > n {
		return string(r[:n-1]) + "…"
	}
	return string(r)
}
