package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/orderstream/orderstream/consumers"
	"github.com/orderstream/orderstream/producer/topic"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kadm"
)

// sinkParams are the settings of a projection daemon's sink beyond the
// global flags.
type sinkParams struct {
	generation  string                // "" follows the serving generation
	indexPrefix string                // search only; "" = search.DefaultPrefix
	reg         prometheus.Registerer // where the sink registers its metrics; nil = none
}

func newConsumeCmd(g *globals) *cobra.Command {
	var (
		cfg         consumers.Config
		metricsAddr string
		sp          sinkParams
		checkEvery  time.Duration
		pv          periodicVerify
	)
	cmd := &cobra.Command{
		Use:   "consume PROJECTION",
		Short: "Run a projection daemon (analytics or search) as a Kafka consumer-group member",
		Long: `Consumes the orders topic as a member of the projection's consumer group and
applies each batch of events to the read model, committing offsets only after
the read model acknowledged them (at-least-once; the sinks are idempotent).

Records that are not valid events, or that the read model rejects for good,
go to <topic>.dlq with the reason in headers (see 'orderstream dlq list');
the later events of the same order follow them there, parked, until
'orderstream dlq replay' re-drives them.
Read-model outages are retried with backoff until it recovers. A committed
offset that fell out of the topic's retention stops the daemon with an
error instead of skipping events.

Each daemon is a static member of its group (--instance-id, default
<hostname>-<projection>): restarted after a crash it gets its partitions
back at once instead of after --session-timeout. It does not leave the group
when it stops, so its partitions wait up to --session-timeout for it; two
processes with one instance id fence each other (the first stops with an
error). --instance-id none makes a dynamic member.

With --verify-interval, compares --verify-sample random orders of the write
side with the serving generation every interval, as 'orderstream verify'
does, logging drift at WARN and exporting orderstream_verify_orders_total,
orderstream_verify_drift_orders and orderstream_verify_failures_total.

Serves /metrics, /healthz and /readyz on --metrics-addr. SIGINT/SIGTERM
finishes the in-flight batch and commits; a second signal exits at once.`,
		Example: `  orderstream consume analytics
  orderstream consume search --group orderstream-search --metrics-addr 127.0.0.1:9466`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			name := args[0]
			p, err := lookupReadModel(name)
			if err != nil {
				return usagef("consume: %v", err)
			}
			if !cmd.Flags().Changed("metrics-addr") && metricsAddr == "" {
				metricsAddr = p.metricsAddr
			}
			if cfg.Group == "" {
				cfg.Group = "orderstream-" + name
			}
			cfg.Brokers, cfg.Topic, cfg.Projection = g.conn.Kafka.Brokers, g.topic, name
			id, err := instanceID(cfg.InstanceID, name, os.Hostname)
			if err != nil {
				return err
			}
			cfg.InstanceID = id
			if err := cfg.Validate(); err != nil {
				return usagef("consume %s: %v", name, err)
			}
			if name != "search" && cmd.Flags().Changed("index-prefix") {
				return usagef("consume %s: --index-prefix applies to the search projection only", name)
			}
			return stoppedCleanly(cmd.Context(), runConsume(cmd.Context(), g, cfg, metricsAddr, sp, checkEvery, pv))
		},
	}
	f := cmd.Flags()
	f.StringVar(&cfg.Group, "group", "", "consumer group id (default orderstream-<projection>)")
	f.StringVar(&metricsAddr, "metrics-addr", "", "listen address of /metrics, /healthz, /readyz (default 127.0.0.1:9465 for analytics, 127.0.0.1:9466 for search; 'off' disables)")
	f.StringVar(&sp.generation, "generation", "", "read-model generation to write (default: follow the serving generation)")
	addIndexPrefixFlag(f, &sp.indexPrefix)
	addConsumerFlags(f, &cfg)
	addPeriodicVerifyFlags(f, &pv)
	f.DurationVar(&checkEvery, "topic-check-interval", topic.DefaultWatchInterval, "how often the topic's retention, compaction and log start offsets are checked; a topic that can no longer be replayed from offset zero is logged (ERROR, once per change) and sets orderstream_consumer_topic_replayable to 0")
	return cmd
}

// addConsumerFlags registers the batching, retry and shutdown settings.
func addConsumerFlags(f interface {
	IntVar(*int, string, int, string)
	DurationVar(*time.Duration, string, time.Duration, string)
	Int64Var(*int64, string, int64, string)
	StringVar(*string, string, string, string)
}, cfg *consumers.Config) {
	f.IntVar(&cfg.BatchMaxRecords, "batch-max-records", consumers.DefaultBatchMaxRecords, "largest batch handed to the read model, in records")
	f.IntVar(&cfg.BatchMaxBytes, "batch-max-bytes", consumers.DefaultBatchMaxBytes, "largest batch, in bytes of record values")
	f.DurationVar(&cfg.BatchMaxWait, "batch-max-wait", consumers.DefaultBatchMaxWait, "longest time the first record of a batch waits for more")
	f.DurationVar(&cfg.BatchMinInterval, "batch-min-interval", consumers.DefaultBatchMinInterval, "once caught up with the topic, a batch is written as soon as this has passed since the previous write started (≥ --batch-max-wait: off, every batch waits --batch-max-wait)")
	f.DurationVar(&cfg.RetryInitial, "retry-initial", consumers.DefaultRetryInitial, "first backoff after a failed write")
	f.DurationVar(&cfg.RetryMax, "retry-max", consumers.DefaultRetryMax, "largest backoff between write attempts (retries never give up)")
	f.DurationVar(&cfg.ShutdownTimeout, "shutdown-timeout", consumers.DefaultShutdownTimeout, "time to finish the in-flight batch after SIGTERM")
	f.Int64Var(&cfg.ReadyLag, "ready-lag", consumers.DefaultReadyLag, "largest total lag, in records, at which /readyz answers 200")
	f.StringVar(&cfg.DLQTopic, "dlq-topic", "", "dead-letter topic (default <topic>.dlq)")
	f.StringVar(&cfg.InstanceID, "instance-id", "", "static group member id, unique per process of a group (default <hostname>-<projection>; 'none': dynamic member)")
	f.DurationVar(&cfg.SessionTimeout, "session-timeout", consumers.DefaultSessionTimeout, "how long a crashed or stopped member keeps its partitions before they move (broker bounds: 6s-30m by default)")
}

// noInstanceID is the --instance-id value of a dynamic group member.
const noInstanceID = "none"

// instanceID resolves --instance-id of projection: "" derives
// <hostname>-<projection> (consumers.InstanceIDFor), "none" gives "" (a
// dynamic member), anything else is kept (consumers.Config.Validate checks
// it).
func instanceID(flag, projection string, hostname func() (string, error)) (string, error) {
	switch flag {
	case noInstanceID:
		return "", nil
	case "":
		host, err := hostname()
		if err != nil || host == "" {
			return "", usagef("--instance-id: no host name to derive it from (%v): set --instance-id (or ORDERSTREAM_INSTANCE_ID) to an id unique in the group, or 'none'", err)
		}
		return consumers.InstanceIDFor(host, projection), nil
	}
	return flag, nil
}

// runConsume builds the read model's daemon sink (daemonSink) and the consumer, serves the metrics endpoint,
// watches the topic's replayability every checkEvery, verifies the read
// model as pv says and runs until ctx is cancelled; the sink is closed after
// Run returned.
func runConsume(ctx context.Context, g *globals, cfg consumers.Config, metricsAddr string, sp sinkParams, checkEvery time.Duration, pv periodicVerify) (err error) {
	// One registry for the runtime's and the sink's metrics, with the Go
	// runtime and process collectors, served on /metrics.
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	sp.reg = reg
	sink, closer, err := daemonSink(ctx, g, cfg.Projection, sp.generation, readModelOptions{indexPrefix: sp.indexPrefix, reg: reg})
	if err != nil {
		return fmt.Errorf("%s sink: %w", cfg.Projection, err)
	}
	defer func() {
		if closer != nil {
			if cerr := closer.Close(); cerr != nil {
				err = errors.Join(err, fmt.Errorf("close %s sink: %w", cfg.Projection, cerr))
			}
		}
	}()
	kopts, err := g.kafkaOpts()
	if err != nil {
		return err
	}
	c, err := consumers.New(cfg, sink, consumers.WithLogger(g.log), consumers.WithRegisterer(reg), consumers.WithClientOpts(kopts...))
	if err != nil {
		return usagef("%v", err)
	}
	defer c.Close()

	watch, err := topic.NewWatcher(topic.WatchConfig{Topic: cfg.Topic, Interval: checkEvery, Component: "consumer"},
		g.log.With("projection", cfg.Projection, "group", cfg.Group), reg)
	if err != nil {
		return usagef("--topic-check-interval: %v", err)
	}
	kcl, err := g.kafkaClient()
	if err != nil {
		return err
	}
	defer kcl.Close()
	verifier, closeVerifier, err := pv.start(ctx, g, cfg, sp.indexPrefix, reg)
	if err != nil {
		return err
	}
	defer closeVerifier()
	run := func(ctx context.Context) error {
		wctx, stopWatch := context.WithCancel(ctx)
		watched := make(chan struct{}, 2)
		go func() {
			_ = watch.Run(wctx, kadm.NewClient(kcl)) // ends with wctx; what it finds is logged and in the metric
			watched <- struct{}{}
		}()
		go func() {
			if verifier != nil {
				_ = verifier.Run(wctx) // ends with wctx; what it finds is logged and in the metrics
			}
			watched <- struct{}{}
		}()
		defer func() { stopWatch(); <-watched; <-watched }()
		return c.Run(ctx)
	}
	if metricsAddr == "off" {
		metricsAddr = ""
	}
	return runWithMetrics(ctx, metricsAddr, consumers.Handler(c, nil), run)
}
