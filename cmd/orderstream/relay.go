package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"text/tabwriter"
	"time"

	"github.com/orderstream/orderstream/producer/relay"
	"github.com/orderstream/orderstream/producer/topic"
	"github.com/spf13/cobra"
	"golang.org/x/sync/errgroup"
)

func newRelayCmd(g *globals) *cobra.Command {
	var (
		mode        string
		cfg         relay.Config
		retention   time.Duration
		metricsAddr string
		partitions  int32
		replication int16
	)
	cmd := &cobra.Command{
		Use:   "relay",
		Short: "Relay the outbox to Kafka (CDC through logical replication, or polling)",
		Long: `Copies every outbox row to the Kafka topic --topic, in commit order: key = order
id, value = the stored envelope, CloudEvents headers, aggregate_version and
relay_position. At least once, with duplicates after a crash skipped by
comparing positions with the last record the relay wrote in each partition
(found by reading back past records others appended, e.g. a DLQ re-drive, at
most --duplicate-scan records per partition).

--mode=wal (default) streams INSERTs through logical replication (pgoutput);
the first run creates the publication and the slot and backfills the rows
already in the outbox. --mode=poll reads the table in (tx_id, id) order below
the visibility watermark, for databases without logical replication: a
transaction left open anywhere on the server (any database) holds it back;
orderstream_relay_lag_seconds then shows the waiting rows' age and, after
--stall-warning, a WARN names the blocking backend (pid, database, start).

Needs ` + "`orderstream migrate`" + ` to have run. Only one relay per slot is active; others
wait as standbys and take over when it dies. When the connection to PostgreSQL
is lost (a server restart), the relay reconnects by itself with backoff (500 ms
to 5 s), takes the lock again (or waits as standby) and resumes from its
checkpoint; /healthz answers 503 "reconnecting" meanwhile. Serves /metrics and
/healthz on --metrics-addr. SIGINT/SIGTERM: stop reading, flush Kafka, confirm,
exit 0.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			pgURL, err := g.pgURL()
			if err != nil {
				return err
			}
			kopts, err := g.kafkaOpts()
			if err != nil {
				return err
			}
			cfg.PostgresURL, cfg.Brokers, cfg.Topic = pgURL, g.conn.Kafka.Brokers, g.topic
			cfg.Mode = relay.Mode(mode)
			cfg.OutboxRetention = retention
			if retention == 0 {
				cfg.OutboxRetention = -1
			}
			cfg.TopicSpec = topic.Spec{Partitions: partitions, ReplicationFactor: replication}
			r, err := relay.New(cfg, relay.WithLogger(g.log), relay.WithKafkaOptions(kopts...))
			if err != nil {
				return usagef("%v", err)
			}
			defer r.Close()
			return stoppedCleanly(cmd.Context(), runWithMetrics(cmd.Context(), metricsAddr, r.Handler(), r.Run))
		},
	}
	f := cmd.Flags()
	f.StringVar(&mode, "mode", "wal", "source of outbox rows: wal (logical replication, needs wal_level=logical) or poll (SELECT by (tx_id, id) below the visibility watermark)")
	f.StringVar(&cfg.Slot, "slot", relay.DefaultSlot, "logical replication slot (created on the first run); also names the relay lock and the poll cursor")
	f.StringVar(&cfg.Publication, "publication", relay.DefaultPublication, "publication of outbox INSERTs (created on the first run)")
	f.DurationVar(&cfg.Heartbeat, "heartbeat", relay.DefaultHeartbeat, "interval of heartbeat WAL messages that let the slot advance while the outbox is idle (wal mode)")
	f.DurationVar(&retention, "outbox-retention", relay.DefaultOutboxRetention, "delete relayed outbox rows older than this, every 5 min; 0 disables the purge")
	f.StringVar(&metricsAddr, "metrics-addr", "127.0.0.1:9464", "host:port serving /metrics and /healthz (200 when streaming or standby); empty disables")
	f.BoolVar(&cfg.AllowFiniteRetention, "allow-finite-retention", false, "start even if the topic's retention or compaction may delete events (a replay from offset zero would then miss some)")
	f.DurationVar(&cfg.TopicCheckInterval, "topic-check-interval", topic.DefaultWatchInterval, "how often the topic's retention, compaction, log start offsets and replication are checked; a topic that can no longer be replayed from offset zero is logged (ERROR, once per change) and sets orderstream_relay_topic_replayable to 0; replication factor 1 on several brokers or min.insync.replicas below 2 with three replicas is logged (ERROR, WARN with --allow-under-replicated, once per change) and sets orderstream_relay_topic_replicated to 0")
	f.BoolVar(&cfg.AllowUnderReplicated, "allow-under-replicated", false, "start even if the topic has one replica on a cluster of several brokers, or min.insync.replicas below 2 with three replicas (losing a broker may then lose events)")
	f.BoolVar(&cfg.CreateTopic, "create-topic", true, "create the topic with infinite retention if it does not exist")
	f.Int32Var(&partitions, "partitions", topic.DefaultPartitions, "partitions of the topic when --create-topic creates it (verified when it exists)")
	f.Int16Var(&replication, "replication-factor", topic.DefaultReplicationFactor, "replication factor when --create-topic creates the topic; -1 = broker default")
	f.DurationVar(&cfg.StandbyPoll, "standby-poll", relay.DefaultStandbyPoll, "how often a standby relay retries the lock held by the active one")
	f.IntVar(&cfg.MaxInFlight, "max-in-flight", relay.DefaultMaxInFlight, "events handed to Kafka and not yet acked, at most (bounds memory; reading pauses at the bound)")
	f.Int64Var(&cfg.MaxInFlightBytes, "max-in-flight-bytes", relay.DefaultMaxInFlightBytes, "bytes (key, value, headers) of the events handed to Kafka and not yet acked, at most (bounds memory with --max-in-flight; an event larger than it goes alone)")
	f.DurationVar(&cfg.StallWarning, "stall-warning", relay.DefaultStallWarning, "poll mode: once a committed outbox row has waited this long behind an open transaction (the visibility watermark), a WARN names that transaction's backend")
	f.IntVar(&cfg.DuplicateScan, "duplicate-scan", relay.DefaultDuplicateScan, "records read back, at most, from each partition's end at start to find the last one the relay wrote (past records others appended); a partition without one within the bound gets no duplicate check")
	f.BoolVar(&cfg.AcceptSlotReset, "accept-slot-reset", false, "after a lost or moved replication slot: re-baseline at the slot's (or the current) position deliberately; events in the gap are NOT relayed")
	f.BoolVar(&cfg.ParkOversized, "park-oversized", false, "an outbox event larger than the topic accepts (max.message.bytes, at most the 1 MiB producer batch) is kept in relay_parked_events with its order's later events, and the relay goes on; without it the relay stops naming the row")
	cmd.AddCommand(newRelayParkedCmd(g))
	return cmd
}

// newRelayParkedCmd is `relay parked`: the events the relay parked.
func newRelayParkedCmd(g *globals) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "parked",
		Short: "List the outbox events the relay parked instead of producing (too large for the topic, or behind one of their order)",
		Long: `Lists relay_parked_events: each outbox event the relay did not produce because its
Kafka record is larger than the topic accepts (reason oversized; written by
'orderstream relay --park-oversized'), and the later events of the same orders,
held back so that no read model sees such an order without its earlier event
(reason behind_oversized). The whole envelope of each is kept in the table
(SELECT envelope FROM relay_parked_events WHERE event_id = '…').`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			pool, err := g.pgPool(cmd.Context())
			if err != nil {
				return err
			}
			defer pool.Close()
			ps, err := relay.ListParked(cmd.Context(), pool)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if asJSON {
				return writeJSON(out, ps)
			}
			tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "OUTBOX ID\tEVENT ID\tORDER ID\tEVENT TYPE\tVERSION\tSIZE\tLIMIT\tREASON\tPARKED AT")
			for _, p := range ps {
				fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%d\t%d\t%d\t%s\t%s\n", p.OutboxID, p.EventID, p.OrderID, p.EventType, p.AggregateVersion,
					p.SizeBytes, p.LimitBytes, p.Reason, p.ParkedAt.UTC().Format(time.RFC3339))
			}
			return tw.Flush()
		},
	}
	addJSONFormatFlag(cmd, &asJSON)
	return cmd
}

// runWithMetrics runs fn and, when addr is not empty, an HTTP server of h on
// addr until fn returns.
func runWithMetrics(ctx context.Context, addr string, h http.Handler, fn func(context.Context) error) error {
	if addr == "" {
		return fn(ctx)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return usagef("--metrics-addr %s: %v", addr, err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	eg, ctx := errgroup.WithContext(ctx)
	eg.Go(func() error {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			return fmt.Errorf("metrics server: %w", err)
		}
		return nil
	})
	eg.Go(func() error {
		err := fn(ctx)
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
		return err
	})
	return eg.Wait()
}
