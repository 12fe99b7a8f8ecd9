package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/orderstream/orderstream/consumers"
	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

func newDLQCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "dlq",
		Short: "Inspect and re-drive the dead-letter topic of the projections",
		Long: `Records that a projection could not apply (not a valid event, or rejected
for good by the read model) are copied to <topic>.dlq with headers saying
where they came from and why. 'dlq list' shows them; 'dlq replay' produces
them back to their source partition once the cause is fixed.`,
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
event id and type, and the order id. With --json, one JSON object per line.`,
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
				fmt.Fprintln(tw, "DLQ OFFSET\tSOURCE\tERROR\tATTEMPTS\tFIRST FAILURE\tEVENT ID\tEVENT TYPE\tORDER ID")
			}
			n := 0
			err := readDLQ(cmd.Context(), g.brokers, topic, func(r *kgo.Record) (bool, error) {
				e, perr := consumers.ParseDLQ(r)
				if perr != nil {
					g.log.Warn("not a dead-letter record of this runtime", "err", perr)
				}
				n++
				if asJSON {
					b, err := json.Marshal(e)
					if err != nil {
						return false, err
					}
					fmt.Fprintln(out, string(b))
				} else {
					ff := ""
					if !e.FirstFailure.IsZero() {
						ff = e.FirstFailure.Format(time.RFC3339)
					}
					fmt.Fprintf(tw, "%d/%d\t%s/%d@%d\t%s\t%d\t%s\t%s\t%s\t%s\n", e.Partition, e.Offset,
						e.SourceTopic, e.SourcePartition, e.SourceOffset, oneLine(e.Error, 120), e.Attempts, ff, e.EventID, e.EventType, e.OrderID)
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
	f.BoolVar(&asJSON, "json", false, "print one JSON object per record")
	f.IntVar(&limit, "limit", 0, "print at most N records (0: all)")
	return cmd
}

func newDLQReplayCmd(g *globals) *cobra.Command {
	var (
		topic  string
		group  string
		dryRun bool
	)
	cmd := &cobra.Command{
		Use:   "replay",
		Short: "Produce dead-lettered records back to their source partition",
		Long: `Re-drives every dead-letter record not re-driven yet: its original key,
value and headers are produced to its source topic and partition, where the
projections consume it again (they are idempotent, so re-driving is safe).
Progress is committed in its own consumer group on the dead-letter topic
(--group), after the produce was acknowledged, so a record is re-driven once.
It stops at the end of the dead-letter topic and reports how many records it
re-drove. With --dry-run it lists what it would re-drive and commits nothing.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if topic == "" {
				topic = consumers.DLQTopicFor(g.topic)
			}
			if group == "" {
				group = "orderstream-dlq-replay-" + topic
			}
			n, err := replayDLQ(cmd.Context(), g, topic, group, dryRun, cmd.OutOrStdout())
			verb := "re-drove"
			if dryRun {
				verb = "would re-drive"
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s %d record(s) from %s\n", verb, n, topic)
			return err
		},
	}
	f := cmd.Flags()
	f.StringVar(&topic, "dlq-topic", "", "dead-letter topic (default <topic>.dlq)")
	f.StringVar(&group, "group", "", "consumer group tracking re-drive progress (default orderstream-dlq-replay-<dlq topic>)")
	f.BoolVar(&dryRun, "dry-run", false, "list what would be re-driven; produce and commit nothing")
	return cmd
}

// readDLQ calls fn for every record of topic from the start up to its end
// offsets as listed when it starts, until fn returns false.
func readDLQ(ctx context.Context, brokers []string, topic string, fn func(*kgo.Record) (bool, error)) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
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

// replayDLQ re-drives the records of topic that group has not committed yet.
func replayDLQ(ctx context.Context, g *globals, topic, group string, dryRun bool, out io.Writer) (int, error) {
	cl, err := kgo.NewClient(
		kgo.SeedBrokers(g.brokers...),
		kgo.ConsumerGroup(group),
		kgo.ConsumeTopics(topic),
		kgo.DisableAutoCommit(),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.RecordPartitioner(kgo.ManualPartitioner()),
	)
	if err != nil {
		return 0, fmt.Errorf("kafka client: %w", err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	ends, err := listEnds(ctx, adm, topic)
	if err != nil {
		return 0, err
	}
	starts := map[int32]int64{}
	if offs, err := adm.FetchOffsets(ctx, group); err == nil {
		for p, o := range offs[topic] {
			if o.Err == nil && o.At >= 0 {
				starts[p] = o.At
			}
		}
	}
	n := 0
	err = drain(ctx, cl, ends, starts, func(r *kgo.Record) (bool, error) {
		e, err := consumers.ParseDLQ(r)
		if err != nil {
			return false, fmt.Errorf("cannot re-drive: %w", err)
		}
		if dryRun {
			fmt.Fprintf(out, "would re-drive dlq %d/%d → %s/%d (was offset %d, event %s, order %s): %s\n",
				e.Partition, e.Offset, e.SourceTopic, e.SourcePartition, e.SourceOffset, e.EventID, e.OrderID, oneLine(e.Error, 120))
			n++
			return true, nil
		}
		if err := cl.ProduceSync(ctx, consumers.OriginalRecord(r, e)).FirstErr(); err != nil {
			return false, fmt.Errorf("re-drive dlq %d/%d to %s/%d: %w", e.Partition, e.Offset, e.SourceTopic, e.SourcePartition, err)
		}
		if err := cl.CommitRecords(ctx, r); err != nil {
			return false, fmt.Errorf("record progress after dlq %d/%d (it was re-driven; a rerun re-drives it again, harmlessly): %w", e.Partition, e.Offset, err)
		}
		n++
		g.log.Info("re-drove dead-letter record", "dlq_offset", e.Offset, "topic", e.SourceTopic, "partition", e.SourcePartition,
			"offset", e.SourceOffset, "event_id", e.EventID, "order_id", e.OrderID)
		return true, nil
	})
	if lerr := cl.LeaveGroupContext(ctx); lerr != nil && err == nil && ctx.Err() == nil {
		err = fmt.Errorf("leave group %s: %w", group, lerr)
	}
	return n, err
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
