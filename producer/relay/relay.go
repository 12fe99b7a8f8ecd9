package relay

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/orderstream/orderstream/producer/topic"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/plugin/kprom"
	"golang.org/x/sync/errgroup"
)

// Defaults of Config.
const (
	DefaultSlot             = "orderstream_relay"
	DefaultPublication      = "orderstream_outbox"
	DefaultHeartbeat        = 10 * time.Second
	DefaultOutboxRetention  = 168 * time.Hour
	DefaultPurgeInterval    = 5 * time.Minute
	DefaultStandbyPoll      = 2 * time.Second
	DefaultMaxInFlight      = 10000
	DefaultMaxInFlightBytes = 16 << 20
	DefaultPollBatch        = 5000
	DefaultPollIdle         = 200 * time.Millisecond
	DefaultStatusInterval   = time.Second
	DefaultDuplicateScan    = 10000
	DefaultReconnectInitial = 500 * time.Millisecond
	DefaultReconnectMax     = 5 * time.Second
	DefaultStallWarning     = 30 * time.Second
	// PurgeSafetyMargin: WAL mode purges only rows recorded this long
	// before the commit time of the last confirmed transaction.
	PurgeSafetyMargin = time.Hour
)

// Errors of Run; test with errors.Is.
var (
	// ErrNotMigrated: the outbox or the relay's tables are missing.
	ErrNotMigrated = errors.New("database not migrated")
	// ErrSlotLost: the checkpoint says the relay streamed from a slot that
	// no longer exists, or that was moved ahead by someone else.
	ErrSlotLost = errors.New("replication slot lost or moved")
)

// Config is the relay's configuration. Zero durations and counts take the
// defaults above; PostgresURL, Brokers and Topic are required.
type Config struct {
	PostgresURL string   // write side database; WAL mode needs wal_level=logical and the REPLICATION attribute
	Brokers     []string // Kafka seed brokers host:port
	Topic       string   // topic of order events
	Mode        Mode     // ModeWAL (default) or ModePoll

	Slot        string        // logical replication slot (WAL), also the lock and poll cursor name; default orderstream_relay
	Publication string        // publication of the outbox INSERTs; default orderstream_outbox
	Heartbeat   time.Duration // WAL: how often a heartbeat message is written to the WAL; default 10 s

	OutboxRetention time.Duration // relayed rows older than this are deleted; default 168 h; negative disables the purge
	PurgeInterval   time.Duration // how often the purge runs; default 5 min

	StandbyPoll time.Duration // how often a standby retries the relay lock; default 2 s
	MaxInFlight int           // events handed to Kafka and not yet acked, at most; default 10000
	// MaxInFlightBytes bounds the bytes (key, value and headers) of the
	// events handed to Kafka and not yet acked; reading pauses at either
	// bound. An event larger than the bound is sent alone. Default 16 MiB:
	// several times the producer's batches in flight at full speed (the
	// relay's rate did not change between 8 MiB and unbounded, make bench),
	// while 10,000 events of up to 1 MiB would not bound memory at all.
	MaxInFlightBytes int64
	PollBatch        int           // poll mode: rows per query; default min(5000, MaxInFlight)
	PollIdle         time.Duration // poll mode: wait after an empty poll; default 200 ms
	StatusInterval   time.Duration // WAL: how often the confirmed position is sent; poll: how often the lag is measured; default 1 s
	StallWarning     time.Duration // poll mode: a WARN names the open transaction holding the watermark once a committed row waited this long behind it; default 30 s

	// DuplicateScan bounds the start-up duplicate check: at most this many
	// records (offsets) are read back from each partition's end to find the
	// last record the relay wrote, past records others appended (a DLQ
	// re-drive). Default 10000. A partition where none is found within the
	// bound gets no duplicate check (its unconfirmed events are produced
	// again) and a WARN. Reading costs about bound × record size per such
	// partition, once per start.
	DuplicateScan int

	// After a lost connection to PostgreSQL the relay waits ReconnectInitial
	// (default 500 ms), doubling each failed attempt up to ReconnectMax
	// (default 5 s: a failed attempt against a server that is down costs a
	// refused dial, and a restarted server is used again within about 7.5 s),
	// ±50 % jitter, before reconnecting; it never gives up.
	ReconnectInitial time.Duration
	ReconnectMax     time.Duration

	CreateTopic          bool       // create the topic (topic.Provision) when missing
	TopicSpec            topic.Spec // used with CreateTopic (Name is taken from Topic)
	AllowFiniteRetention bool       // start although the topic may delete events
	AllowUnderReplicated bool       // start although the topic has 1 replica on several brokers (topic.ErrUnderReplicated)
	// TopicCheckInterval is how often the topic's replayability (retention,
	// compaction, log start offsets; topic.CheckReplayable) and replication
	// (topic.Info.ReplicationProblems) are checked while relaying; default
	// topic.DefaultWatchInterval (30 s). A change is logged once (ERROR; a
	// replication problem at WARN with AllowUnderReplicated) and shown by
	// the gauges orderstream_relay_topic_replayable and
	// orderstream_relay_topic_replicated; relaying goes on.
	TopicCheckInterval time.Duration
	AcceptSlotReset    bool // re-baseline deliberately after ErrSlotLost (events in between are not relayed)
	// ParkOversized: an outbox event whose record is larger than the topic
	// accepts (an *OversizedError, which stops Run by default) is written to
	// relay_parked_events instead, with the order's later events, and the
	// relay goes on. Events of orders already parked are parked whatever
	// this says.
	ParkOversized bool
}

func (c *Config) setDefaults() {
	if c.Mode == "" {
		c.Mode = ModeWAL
	}
	if c.Slot == "" {
		c.Slot = DefaultSlot
	}
	if c.Publication == "" {
		c.Publication = DefaultPublication
	}
	if c.Heartbeat == 0 {
		c.Heartbeat = DefaultHeartbeat
	}
	if c.OutboxRetention == 0 {
		c.OutboxRetention = DefaultOutboxRetention
	}
	if c.PurgeInterval == 0 {
		c.PurgeInterval = DefaultPurgeInterval
	}
	if c.StandbyPoll == 0 {
		c.StandbyPoll = DefaultStandbyPoll
	}
	if c.MaxInFlight == 0 {
		c.MaxInFlight = DefaultMaxInFlight
	}
	if c.MaxInFlightBytes == 0 {
		c.MaxInFlightBytes = DefaultMaxInFlightBytes
	}
	if c.PollBatch == 0 {
		c.PollBatch = min(DefaultPollBatch, c.MaxInFlight)
	}
	if c.PollIdle == 0 {
		c.PollIdle = DefaultPollIdle
	}
	if c.StatusInterval == 0 {
		c.StatusInterval = DefaultStatusInterval
	}
	if c.DuplicateScan == 0 {
		c.DuplicateScan = DefaultDuplicateScan
	}
	if c.StallWarning == 0 {
		c.StallWarning = DefaultStallWarning
	}
	if c.ReconnectInitial == 0 {
		c.ReconnectInitial = DefaultReconnectInitial
	}
	if c.ReconnectMax == 0 {
		c.ReconnectMax = max(DefaultReconnectMax, c.ReconnectInitial)
	}
	if c.TopicCheckInterval == 0 {
		c.TopicCheckInterval = topic.DefaultWatchInterval
	}
	c.TopicSpec.Name = c.Topic
}

// Validate returns every problem of c at once (after defaults).
func (c Config) Validate() error {
	var errs []error
	if c.PostgresURL == "" {
		errs = append(errs, errors.New("postgres URL is empty"))
	}
	if len(c.Brokers) == 0 {
		errs = append(errs, errors.New("no Kafka brokers"))
	}
	if c.Topic == "" {
		errs = append(errs, errors.New("topic is empty"))
	}
	if c.Mode != ModeWAL && c.Mode != ModePoll {
		errs = append(errs, fmt.Errorf("mode %q: want wal or poll", c.Mode))
	}
	if !validIdent(c.Slot) {
		errs = append(errs, fmt.Errorf("slot %q: want lower-case letters, digits and _ (at most 63)", c.Slot))
	}
	if !validIdent(c.Publication) {
		errs = append(errs, fmt.Errorf("publication %q: want lower-case letters, digits and _ (at most 63)", c.Publication))
	}
	if c.ReconnectMax < c.ReconnectInitial {
		errs = append(errs, fmt.Errorf("reconnect max %s: want >= reconnect initial %s", c.ReconnectMax, c.ReconnectInitial))
	}
	if c.Heartbeat < 0 || c.StandbyPoll < 0 || c.PurgeInterval < 0 || c.PollIdle < 0 || c.StatusInterval < 0 || c.ReconnectInitial < 0 || c.StallWarning < 0 || c.TopicCheckInterval < 0 {
		errs = append(errs, errors.New("durations must not be negative (except outbox retention)"))
	}
	if c.MaxInFlight < 1 {
		errs = append(errs, fmt.Errorf("max in flight %d: want >= 1", c.MaxInFlight))
	}
	if c.MaxInFlightBytes < 1 {
		errs = append(errs, fmt.Errorf("max in flight bytes %d: want >= 1", c.MaxInFlightBytes))
	}
	if c.DuplicateScan < 1 {
		errs = append(errs, fmt.Errorf("duplicate scan %d: want >= 1 records", c.DuplicateScan))
	}
	if c.PollBatch < 1 || c.PollBatch > c.MaxInFlight {
		errs = append(errs, fmt.Errorf("poll batch %d: want 1..max in flight (%d)", c.PollBatch, c.MaxInFlight))
	}
	if c.CreateTopic {
		if err := c.TopicSpec.Validate(); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func validIdent(s string) bool {
	if s == "" || len(s) > 63 {
		return false
	}
	for _, r := range s {
		if (r < 'a' || r > 'z') && (r < '0' || r > '9') && r != '_' {
			return false
		}
	}
	return true
}

// Option configures optional collaborators of a Relay.
type Option func(*Relay)

// WithLogger sets the logger; default slog.Default().
func WithLogger(l *slog.Logger) Option { return func(r *Relay) { r.log = l } }

// WithInFlightHook calls fn with the number of events in flight and their
// bytes each time one more is handed to Kafka (tests use it to check the
// bounds). Default none.
func WithInFlightHook(fn func(events int, bytes int64)) Option {
	return func(r *Relay) { r.onInFlight = fn }
}

// WithKafkaOptions adds franz-go client options after the relay's own, to
// every Kafka client of the relay (producer, start-up scan): how to reach
// Kafka (TLS, SASL: internal/connect.Kafka.ClientOpts), and test settings.
// Default none.
func WithKafkaOptions(opts ...kgo.Opt) Option {
	return func(r *Relay) { r.kafkaOpts = append(r.kafkaOpts, opts...) }
}

// State is what a relay is doing, as /healthz reports it.
type State string

// States of a relay.
const (
	StateStarting  State = "starting"
	StateStandby   State = "standby"   // another instance holds the lock
	StateActive    State = "active"    // holds the lock, setting up
	StateStreaming State = "streaming" // holds the lock, relaying
	// StateReconnecting: the connection to PostgreSQL was lost; waiting to
	// reconnect (with backoff).
	StateReconnecting State = "reconnecting"
	StateStopped      State = "stopped"
)

// Relay copies outbox rows to Kafka, in commit order, at least once and
// nearly exactly once (see the package documentation). Run it once; Close
// is idempotent.
type Relay struct {
	cfg             Config
	log             *slog.Logger
	m               *metrics
	onInFlight      func(int, int64)
	maxMessageBytes atomic.Int64 // the topic's max.message.bytes, read with the topic check (0: unknown)
	kafkaOpts       []kgo.Opt
	watch           *topic.Watcher

	state     atomic.Value  // State
	settled   atomic.Bool   // the current session reached StateStreaming or StateStandby (resets the backoff)
	lastErr   atomic.Value  // lastError: what ended the last session
	pool      *pgxpool.Pool // of the current session
	closeOnce sync.Once
}

// New validates cfg and returns a relay; it connects to nothing yet.
func New(cfg Config, opts ...Option) (*Relay, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("relay config: %w", err)
	}
	r := &Relay{cfg: cfg, log: slog.Default(), m: newMetrics()}
	for _, o := range opts {
		o(r)
	}
	// The watcher adds the topic to its lines itself.
	w, err := topic.NewWatcher(topic.WatchConfig{Topic: cfg.Topic, Interval: cfg.TopicCheckInterval, Component: "relay",
		Replication: true, ReplicationAccepted: cfg.AllowUnderReplicated},
		r.log.With("component", "relay", "mode", string(cfg.Mode), "slot", cfg.Slot), r.m.reg)
	r.log = r.log.With("component", "relay", "mode", string(cfg.Mode), "slot", cfg.Slot, "topic", cfg.Topic)
	if err != nil {
		return nil, fmt.Errorf("relay config: %w", err)
	}
	r.watch = w
	r.state.Store(StateStarting)
	return r, nil
}

// Registry returns the relay's Prometheus registry.
func (r *Relay) Registry() *prometheus.Registry { return r.m.reg }

// State returns what the relay is doing now.
func (r *Relay) State() State { return r.state.Load().(State) }

func (r *Relay) setState(s State) {
	r.state.Store(s)
	if s == StateStreaming || s == StateStandby {
		r.settled.Store(true)
	}
	if s == StateActive || s == StateStreaming {
		r.m.active.Set(1)
	} else {
		r.m.active.Set(0)
	}
}

// Handler serves /metrics (Prometheus text format), /healthz and /livez.
// /healthz: 200 with the state ("streaming" or "standby"), 503 with the
// state otherwise; while reconnecting, a second line names the lost
// connection's error and when it ended the session. /livez: 200 with the
// state for as long as Run has not returned — a relay that is reconnecting
// heals by itself, so a liveness probe on /livez does not restart it during
// a PostgreSQL outage (a readiness probe uses /healthz).
func (r *Relay) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(r.m.reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("/livez", func(w http.ResponseWriter, _ *http.Request) {
		s := r.State()
		if s == StateStopped {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
		fmt.Fprintln(w, s)
	})
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		s := r.State()
		if s != StateStreaming && s != StateStandby {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
		fmt.Fprintln(w, s)
		if le, ok := r.lastErr.Load().(lastError); ok && s == StateReconnecting {
			fmt.Fprintf(w, "connection lost at %s: %v\n", le.at.UTC().Format(time.RFC3339), le.err)
		}
	})
	return mux
}

// Run relays until ctx is cancelled (then it stops reading, waits for Kafka
// to ack what is in flight, confirms it and returns ctx's error) or until a
// fatal error: database not migrated (ErrNotMigrated), slot lost
// (ErrSlotLost), topic missing or not replayable (topic.ErrNotFound,
// topic.ErrNotReplayable), an event Kafka refused, a refused login. While
// another instance holds the relay lock of the slot, Run waits as a standby.
//
// A lost connection to PostgreSQL (a server restart, a terminated backend,
// a network failure; see connectionLost) ends the session, not Run: the
// relay lets Kafka ack every event it handed over, then reconnects with
// backoff (ReconnectInitial doubling up to ReconnectMax, never giving up;
// state "reconnecting", /healthz 503, orderstream_relay_reconnects_total,
// orderstream_relay_postgres_connected 0). The new session starts over as
// a process start would: the relay lock is taken again (standby if another
// relay took it meanwhile), the checkpoint and slot are checked again
// (ErrSlotLost still stops it), the partitions' last relay records are read
// again, and streaming resumes from the confirmed position with duplicates
// skipped.
func (r *Relay) Run(ctx context.Context) error {
	defer r.setState(StateStopped)
	pcfg, err := pgxpool.ParseConfig(r.cfg.PostgresURL)
	if err != nil {
		return fmt.Errorf("postgres URL: %w", err)
	}
	// Sized for the relay's own concurrent users (stream checkpoints,
	// heartbeats, lag, purge, setup) instead of pgxpool's max(4, NumCPU),
	// so they never queue behind each other for a connection.
	pcfg.MaxConns = poolMaxConns
	var client *kgo.Client // made once the lock is first held; kept across sessions
	defer func() {
		if client != nil {
			client.Close()
		}
	}()
	bo := r.newBackoff()
	for attempt := 1; ; attempt++ {
		r.settled.Store(false)
		err = r.session(ctx, pcfg, &client)
		if errors.Is(err, context.Canceled) && ctx.Err() != nil {
			err = ctx.Err()
			break
		}
		if ctx.Err() != nil || !connectionLost(err) {
			break
		}
		r.m.connected.Set(0)
		r.m.reconnects.Inc()
		r.lastErr.Store(lastError{err: err, at: time.Now()})
		r.setState(StateReconnecting)
		if r.settled.Load() {
			bo.Reset()
			attempt = 1
		}
		wait := bo.NextBackOff()
		r.log.Warn("connection lost; reconnecting", "error", err, "attempt", attempt, "retry_in", wait.Round(time.Millisecond))
		// Every event handed to Kafka is acked before the next session
		// reads the partitions' last relay records (Kafka retries without
		// limit, so only ctx ends the wait).
		if client != nil {
			if ferr := client.Flush(ctx); ferr != nil {
				err = ctx.Err()
				break
			}
		}
		select {
		case <-ctx.Done():
		case <-time.After(wait):
		}
		if ctx.Err() != nil {
			err = ctx.Err()
			break
		}
	}
	r.m.connected.Set(0)
	if dups := counterValue(r.m.duplicates); dups > 0 {
		r.log.Info("duplicates skipped this run", "events", dups)
	}
	if errors.Is(err, context.Canceled) && ctx.Err() != nil {
		r.log.Info("relay stopped")
		return ctx.Err()
	}
	return err
}

// session is one connection to PostgreSQL, from the schema check and the
// relay lock to the end of streaming. It makes *client (the Kafka
// producer, kept across sessions) on its first use.
func (r *Relay) session(ctx context.Context, pcfg *pgxpool.Config, client **kgo.Client) error {
	pool, err := pgxpool.NewWithConfig(ctx, pcfg.Copy())
	if err != nil {
		return fmt.Errorf("postgres pool: %w", err)
	}
	r.pool = pool
	defer pool.Close()
	if err := r.checkSchema(ctx); err != nil {
		return err
	}
	r.m.connected.Set(1)
	lock, err := r.acquireLock(ctx)
	if err != nil {
		return err
	}
	defer lock.Close(context.Background())
	r.setState(StateActive)
	r.log.Info("relay lock acquired: active")

	if *client == nil {
		kopts := []kgo.Opt{
			kgo.SeedBrokers(r.cfg.Brokers...),
			kgo.DefaultProduceTopic(r.cfg.Topic),
			kgo.RequiredAcks(kgo.AllISRAcks()), // idempotent producer (the default) requires it
			kgo.RecordPartitioner(kgo.ManualPartitioner()),
			kgo.ProducerLinger(5 * time.Millisecond),
			kgo.ProducerBatchMaxBytes(ProducerBatchMaxBytes),
			kgo.ProducerBatchCompression(kgo.Lz4Compression(), kgo.NoCompression()),
			kgo.MaxBufferedRecords(r.cfg.MaxInFlight + 1),
			// franz-go's client metrics (orderstream_relay_kafka_*) on /metrics.
			kgo.WithHooks(kprom.NewMetrics("orderstream_relay", kprom.Subsystem("kafka"), kprom.Registerer(r.m.reg), kprom.Gatherer(r.m.reg),
				kprom.FetchAndProduceDetail(kprom.ByNode, kprom.ByTopic, kprom.Batches, kprom.Records, kprom.UncompressedBytes))),
			// Record retries are unlimited by default: giving up on a record would lose or reorder it.
		}
		cl, err := kgo.NewClient(append(kopts, r.kafkaOpts...)...)
		if err != nil {
			return fmt.Errorf("kafka client: %w", err)
		}
		if err := r.checkTopic(ctx, kadm.NewClient(cl)); err != nil {
			cl.Close()
			return err
		}
		*client = cl
	}
	last, partitions, err := lastPositions(ctx, *client, r.cfg.Topic, r.cfg.DuplicateScan, r.log, r.kafkaOpts...)
	if err != nil {
		return err
	}
	r.log.Info("found the relay's last record in the partitions", "partitions", partitions, "with_relay_record", len(last), "duplicate_scan", r.cfg.DuplicateScan)
	pub := newPublisher(*client, r.cfg.Topic, partitions, r.cfg.MaxInFlight, r.cfg.MaxInFlightBytes, last, r.m, r.log)
	pub.onInFlight = r.onInFlight
	parkedOrders, err := loadParkedOrders(ctx, pool)
	if err != nil {
		return err
	}
	pub.oversized = &oversized{topic: r.cfg.Topic, limit: recordLimit(r.maxMessageBytes.Load()), park: r.cfg.ParkOversized,
		pool: pool, orders: parkedOrders, parked: r.m.parked, log: r.log}

	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return r.watchLock(gctx, lock) })
	g.Go(func() error {
		_ = r.watch.Run(gctx, kadm.NewClient(*client)) // ends with gctx; what it finds is logged and in the metric
		return nil
	})
	if r.cfg.OutboxRetention > 0 {
		g.Go(func() error { return r.purgeLoop(gctx) })
	}
	g.Go(func() error {
		var err error
		if r.cfg.Mode == ModeWAL {
			err = r.runWAL(gctx, pub)
		} else {
			err = r.runPoll(gctx, pub)
		}
		if err == nil {
			err = gctx.Err()
		}
		return err
	})
	return g.Wait()
}

// Close releases nothing Run does not release itself; it exists for the
// component contract and is idempotent.
func (r *Relay) Close() error {
	r.closeOnce.Do(func() { r.setState(StateStopped) })
	return nil
}

// Stats is a snapshot of the relay's counters.
type Stats struct {
	Published  int64 // events acked by Kafka
	Duplicates int64 // events skipped as already in their partition
}

// Stats returns the counters since New.
func (r *Relay) Stats() Stats {
	return Stats{Published: int64(counterValue(r.m.published)), Duplicates: int64(counterValue(r.m.duplicates))}
}

func (r *Relay) checkSchema(ctx context.Context) error {
	var outbox, checkpoint bool
	err := r.pool.QueryRow(ctx, `SELECT to_regclass('outbox') IS NOT NULL, to_regclass('relay_checkpoint') IS NOT NULL`).Scan(&outbox, &checkpoint)
	if err != nil {
		return fmt.Errorf("check schema: %w", err)
	}
	if !outbox || !checkpoint {
		return fmt.Errorf("%w: table outbox or relay_checkpoint is missing in the database of --pg-url", ErrNotMigrated)
	}
	return nil
}

func (r *Relay) checkTopic(ctx context.Context, adm *kadm.Client) error {
	var info topic.Info
	var err error
	if r.cfg.CreateTopic {
		var created bool
		info, created, err = topic.Provision(ctx, adm, r.cfg.TopicSpec)
		if created {
			r.log.Info("topic created", "partitions", info.Partitions)
		}
	} else {
		info, err = topic.Check(ctx, adm, r.cfg.Topic)
		if err == nil {
			err = topic.RequireReplayable(info)
		}
	}
	r.maxMessageBytes.Store(info.MaxMessageBytes)
	if errors.Is(err, topic.ErrNotReplayable) && r.cfg.AllowFiniteRetention {
		r.log.Warn("topic may delete events; a replay from offset zero will miss them (allowed by --allow-finite-retention)", "problems", info.Problems())
		err = nil // replication is still judged below
	}
	if err != nil {
		return err
	}
	if err := topic.RequireReplicated(info); err != nil && !r.cfg.AllowUnderReplicated {
		return err
	}
	// An under-replication the operator accepted is logged (WARN) by the
	// watcher, which logs it again only when it changes.
	r.watch.JudgeReplication(info)
	return nil
}
