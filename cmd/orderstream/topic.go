package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"text/tabwriter"

	"github.com/orderstream/orderstream/producer/topic"
	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kadm"
)

func newTopicCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "topic",
		Short: "Create and audit the Kafka topic of order events",
		Args:  cobra.NoArgs,
	}
	cmd.AddCommand(newTopicCreateCmd(g), newTopicStatsCmd(g))
	return cmd
}

func newTopicCreateCmd(g *globals) *cobra.Command {
	var spec topic.Spec
	cmd := &cobra.Command{
		Use:   "create",
		Short: "Create --topic with infinite retention (idempotent; verifies an existing topic)",
		Long: `Creates the topic with retention.ms=-1, retention.bytes=-1 and
cleanup.policy=delete, so a replay from offset zero replays every event. If
the topic exists, verifies those settings and the partition count instead and
fails when they differ.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			spec.Name = g.topic
			if err := spec.Validate(); err != nil {
				return usagef("topic create: %v", err)
			}
			cl, err := g.kafkaClient()
			if err != nil {
				return err
			}
			defer cl.Close()
			info, created, err := topic.Provision(cmd.Context(), kadm.NewClient(cl), spec)
			if err != nil {
				return err
			}
			verb := "exists"
			if created {
				verb = "created"
			}
			fmt.Fprintf(cmd.OutOrStdout(), "topic %s %s: %d partitions, retention.ms=%s retention.bytes=%s cleanup.policy=%s\n",
				info.Name, verb, info.Partitions, info.RetentionMs, info.RetentionBytes, info.CleanupPolicy)
			return nil
		},
	}
	cmd.Flags().Int32Var(&spec.Partitions, "partitions", topic.DefaultPartitions, "partition count (never change it once events were written: orders would move partitions)")
	cmd.Flags().Int16Var(&spec.ReplicationFactor, "replication-factor", topic.DefaultReplicationFactor, "replicas per partition; -1 = the broker's default.replication.factor")
	return cmd
}

func newTopicStatsCmd(g *globals) *cobra.Command {
	var asJSON, compare bool
	cmd := &cobra.Command{
		Use:   "stats",
		Short: "Read the whole topic, print what it holds and check it (exit 1 if a check fails)",
		Long: `Reads every partition of --topic from the earliest offset to the high
watermark at start and prints records per partition, total events, distinct
orders, events by type and by schema version, and CHECKS:
  - versions contiguous: per order, aggregate_version is 1..n in offset order;
  - no duplicate event ids;
  - with --compare-outbox (or --pg-url given on the command line): one Kafka
    event per outbox event (same count, every outbox event_id exactly once).
Exits non-zero if any check fails.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			kopts, err := g.kafkaOpts()
			if err != nil {
				return err
			}
			cl, err := g.kafkaClient()
			if err != nil {
				return err
			}
			defer cl.Close()
			s, err := topic.ReadStats(cmd.Context(), cl, g.conn.Kafka.Brokers, g.topic, kopts...)
			if err != nil {
				return err
			}
			if compare || cmd.Flags().Changed("pg-url") {
				pool, err := g.pgPool(cmd.Context())
				if err != nil {
					return err
				}
				defer pool.Close()
				if err := s.CompareOutbox(cmd.Context(), pool); err != nil {
					return err
				}
			}
			out := cmd.OutOrStdout()
			if asJSON {
				enc := json.NewEncoder(out)
				enc.SetIndent("", "  ")
				if err := enc.Encode(s); err != nil {
					return err
				}
			} else {
				printStats(out, s)
			}
			if !s.OK() {
				return errors.New("topic stats: a check failed (see CHECKS)")
			}
			return nil
		},
	}
	addJSONFormatFlag(cmd, &asJSON)
	cmd.Flags().BoolVar(&compare, "compare-outbox", false, "also compare with the outbox at --pg-url (exactly one Kafka event per outbox event)")
	return cmd
}

// printCounts prints title and one "  key count" line per key, sorted.
func printCounts(w io.Writer, title string, counts map[string]int64) {
	fmt.Fprintf(w, "%s:\n", title)
	keys := make([]string, 0, len(counts))
	for k := range counts {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Fprintf(w, "  %-18s %d\n", k, counts[k])
	}
}

func printStats(w io.Writer, s *topic.Stats) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(w, "topic %s (read in %.2fs)\n", s.Topic, s.ReadSeconds)
	fmt.Fprintln(tw, "partition\trecords\tstart offset\tend offset\t")
	for _, p := range s.Partitions {
		fmt.Fprintf(tw, "%d\t%d\t%d\t%d\t\n", p.Partition, p.Records, p.StartOffset, p.EndOffset)
	}
	tw.Flush()
	fmt.Fprintf(w, "events: %d\norders: %d\n", s.Events, s.Orders)
	printCounts(w, "events by type", s.EventsByType)
	printCounts(w, "events by schema version", s.EventsBySchemaVersion)
	fmt.Fprintln(w, "CHECKS:")
	for _, c := range s.Checks {
		mark := "OK  "
		if !c.OK {
			mark = "FAIL"
		}
		fmt.Fprintf(w, "  %s %s: %s\n", mark, c.Name, c.Detail)
		for _, e := range c.Examples {
			fmt.Fprintf(w, "         %s\n", e)
		}
	}
}
