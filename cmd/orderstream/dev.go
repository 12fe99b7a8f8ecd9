package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/orderstream/orderstream/consumers"
	"github.com/orderstream/orderstream/internal/api"
	"github.com/orderstream/orderstream/internal/connect"
	"github.com/orderstream/orderstream/producer/csvimport"
	"github.com/orderstream/orderstream/producer/relay"
	"github.com/orderstream/orderstream/producer/store"
	"github.com/orderstream/orderstream/producer/topic"
	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"golang.org/x/sync/errgroup"
)

func newDevCmd(g *globals) *cobra.Command {
	var (
		partitions int32
		file       string
		apiFlags   apiFlags
	)
	cmd := &cobra.Command{
		Use:   "dev",
		Short: "Run relay, both projections and the API in one process on an in-process Kafka",
		Long: `For a quick look on a laptop: starts an in-process Kafka cluster (franz-go's
kfake: nothing is persisted, and it is gone when the process exits), then the
relay, the analytics and search projection daemons and the API with
--auth=none on loopback, all in this process. PostgreSQL, ClickHouse and the
search engine are the real ones of --pg-url, --clickhouse-addr and
--search-url (deploy/local/services.sh up postgres clickhouse opensearch).

With --import FILE it also imports an Online Retail CSV through the write side
once everything runs. The relay's slot is a throwaway one (orderstream_dev) so
the production slot is never touched; it is dropped at exit.

Not for production: kfake is a test double of Kafka.`,
		Example: `  orderstream dev --import ../shared/data/online_retail.csv.gz`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runDev(cmd.Context(), g, partitions, file, apiFlags, cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	f := cmd.Flags()
	f.Int32Var(&partitions, "partitions", topic.DefaultPartitions, "partitions of the in-process orders topic")
	f.StringVar(&file, "import", "", "an Online Retail CSV / CSV.gz to import once everything runs")
	f.StringVar(&apiFlags.listen, "listen", api.DefaultListen, "host:port of the API and dashboard (loopback only)")
	return cmd
}

func runDev(ctx context.Context, g *globals, partitions int32, file string, fl apiFlags, stdout, stderr io.Writer) error {
	pgURL, err := g.pgURL()
	if err != nil {
		return err
	}
	pool, err := g.pgPool(ctx)
	if err != nil {
		return err
	}
	defer pool.Close()
	if _, err = store.Migrate(ctx, pool, g.log); err != nil {
		return err
	}
	// The in-process Kafka starts empty, so every run starts the dev slot
	// afresh: the relay's first run backfills the whole outbox.
	if err := relay.ResetSlot(ctx, pool, devSlot); err != nil {
		return err
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		if err := relay.ResetSlot(ctx, pool, devSlot); err != nil {
			g.log.Warn("drop the dev replication slot", "slot", devSlot, "err", err)
		}
	}()
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.DefaultNumPartitions(int(partitions)))
	if err != nil {
		return fmt.Errorf("in-process Kafka: %w", err)
	}
	defer cluster.Close()
	// The in-process Kafka is plain: no TLS or SASL settings apply to it.
	g.conn.Kafka, g.kafka = connect.Kafka{Brokers: cluster.ListenAddrs()}, kafkaConn{}
	g.log.Warn("dev mode: Kafka is in-process and forgets everything at exit", "brokers", g.conn.Kafka.Brokers)

	r, err := relay.New(relay.Config{
		PostgresURL: pgURL, Brokers: g.conn.Kafka.Brokers, Topic: g.topic, Mode: relay.ModeWAL,
		Slot: devSlot, Publication: relay.DefaultPublication, CreateTopic: true,
		TopicSpec: topic.Spec{Partitions: partitions, ReplicationFactor: 1},
	}, relay.WithLogger(g.log))
	if err != nil {
		return err
	}
	defer r.Close()

	fl.auth = string(api.AuthNone)
	fl.requestTimeout = api.DefaultRequestTimeout
	fl.commands, fl.keyRetention, fl.waitLimit, fl.pgMaxConns = true, store.DefaultKeyRetention, api.DefaultWaitLimit, defaultPGMaxConns
	stop := ctx // cancelled by SIGINT/SIGTERM
	eg, ctx := errgroup.WithContext(ctx)
	eg.Go(func() error { return r.Run(ctx) })
	for _, name := range readModelNames() {
		cfg := consumers.Config{Brokers: g.conn.Kafka.Brokers, Topic: g.topic, Group: "orderstream-dev-" + name, Projection: name}
		eg.Go(func() error {
			// The relay creates the topic; wait for it rather than race it.
			if err := waitTopic(ctx, g); err != nil {
				return err
			}
			return runConsume(ctx, g, cfg, "off", sinkParams{}, topic.DefaultWatchInterval, periodicVerify{})
		})
	}
	eg.Go(func() error { return runAPI(ctx, g, fl) })
	if file != "" {
		eg.Go(func() error {
			if err := waitTopic(ctx, g); err != nil {
				return err
			}
			return runImport(ctx, g, importOptions{workers: csvimport.DefaultWorkers, progress: "auto", retryTimeout: csvimport.DefaultRetryTimeout}, file, stdout, stderr)
		})
	}
	return stoppedCleanly(stop, eg.Wait())
}

// devSlot is the replication slot of `orderstream dev`, never the production one.
const devSlot = "orderstream_dev"

// waitTopic polls until the orders topic exists.
func waitTopic(ctx context.Context, g *globals) error {
	cl, err := g.kafkaClient()
	if err != nil {
		return err
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	for {
		details, err := adm.ListTopics(ctx, g.topic)
		if err == nil && details.Has(g.topic) {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}
