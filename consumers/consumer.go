package consumers

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/orderstream/orderstream/schemas"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/plugin/kprom"
)

// Consumer runs one projection's consumer-group member: it polls Topic,
// gathers batches, hands them to the Sink, sends what can never be written to
// the DLQ and commits offsets only after both were acknowledged.
//
// Run may be called once. Health and the metrics are safe for concurrent use.
type Consumer struct {
	cfg  Config
	sink Sink
	log  *slog.Logger
	m    *metrics
	gath prometheus.Gatherer

	cl  *kgo.Client
	adm *kadm.Client

	// mu guards batch and the flags below. The poll loop holds it from
	// the end of a poll until the next AllowRebalance; the group callbacks
	// (revoke, lost, assign) take it, so they never run in the middle of a
	// batch.
	mu       sync.Mutex
	batch    batch // the records gathered and read ahead
	aheadErr error // fatal fetch error met while reading ahead
	flushing bool  // a flush is in progress (possibly waiting between attempts)
	noFlush  bool  // a fatal error occurred: callbacks must not write or commit
	// retry schedules the commit of records written whose commit failed
	// (partState.uncommitted): without it a partition that receives
	// nothing more would keep its lag until a rebalance or a restart.
	retry commitRetry
	// mayRebalance: no poll holds rebalances off (AllowRebalance was called
	// since the last poll that returned records), so a rebalance may be
	// waiting for c.mu in a group callback, and a poll made now would wait
	// for that rebalance: readAhead, which holds c.mu, must not poll.
	mayRebalance bool

	// stateMu guards parts; it is taken after mu, never before, and never
	// held across I/O, so Health answers while a batch is in flight.
	stateMu sync.Mutex
	parts   map[int32]*partState

	// dl keeps the state of the DLQ topic current (not in strict mode):
	// which orders are parked behind a dead letter of the group. dlSync
	// asks the next flush to catch up with it first (set on start and on
	// every assignment).
	dl     atomic.Pointer[dlqReader]
	dlSync atomic.Bool
	// dead are the dead letters of the projection (strict mode only).
	dead    *deadLettered
	dlqOpts []kgo.Opt // client options of the DLQ reader
	// up turns each event into the version the sink reads (WithUpcasters).
	up *schemas.Upcasters

	// groupErr is a group error no retry can cure (fenced by a member with
	// the same instance id, a session timeout the broker refuses), set by
	// the group management goroutine; Run returns it.
	groupErr atomic.Pointer[error]

	started   atomic.Bool
	running   atomic.Bool
	closed    atomic.Bool
	closeOnce sync.Once
}

// partState is what the consumer knows of one assigned partition, for lag.
type partState struct {
	hwm       int64 // high watermark last seen (fetch or listed end offset); -1 unknown
	committed int64 // next offset to process as committed; -1 unknown
	// uncommitted is the last record written (or dead-lettered) whose
	// offset commit failed; nil when every written record is committed.
	uncommitted *kgo.Record
}

// New checks cfg, applies its defaults and builds the franz-go client (no
// connection is made before Run). sink receives the batches.
//
// The client is a group member of cfg.Group with cooperative-sticky
// balancing, autocommit off, rebalances blocked while a batch is in flight,
// and no automatic offset reset: a new group starts at the earliest offset
// and a committed offset that is out of range stops Run with an error. With
// cfg.InstanceID it is a static member (see Config.InstanceID).
func New(cfg Config, sink Sink, opts ...Option) (*Consumer, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("consumer config: %w", err)
	}
	if sink == nil {
		return nil, errors.New("consumer: sink is nil")
	}
	o := options{log: slog.Default()}
	for _, opt := range opts {
		opt(&o)
	}
	c := &Consumer{
		cfg:   cfg,
		sink:  sink,
		log:   o.log.With("projection", cfg.Projection, "group", cfg.Group, "topic", cfg.Topic),
		parts: map[int32]*partState{},
		batch: newBatch(cfg),
		// The caller's client options (timeouts) apply to the DLQ reader
		// too.
		dlqOpts: o.clientOpts,
		up:      o.upcasters,
	}
	if c.up == nil {
		c.up = schemas.NewUpcasters()
	}
	if cfg.InstanceID != "" {
		c.log = c.log.With("instance_id", cfg.InstanceID)
	}
	reg := o.reg
	if reg == nil {
		r := prometheus.NewRegistry()
		reg, c.gath = r, r
	} else if g, ok := reg.(prometheus.Gatherer); ok {
		c.gath = g
	}
	var err error
	c.m, err = newMetrics(reg, cfg, c)
	if err != nil {
		return nil, fmt.Errorf("consumer metrics: %w", err)
	}

	kopts := []kgo.Opt{
		kgo.SeedBrokers(cfg.Brokers...),
		kgo.ConsumerGroup(cfg.Group),
		kgo.ConsumeTopics(cfg.Topic),
		kgo.Balancers(kgo.CooperativeStickyBalancer()),
		kgo.DisableAutoCommit(),
		kgo.BlockRebalanceOnPoll(),
		// Starts a new group at the earliest offset; never resets a
		// committed offset that fell out of range (the fetch error
		// surfaces instead, see pollErrors).
		kgo.ConsumeStartOffset(kgo.NewOffset().AtStart()),
		kgo.ConsumeResetOffset(kgo.NoResetOffset().AtStart()),
		kgo.OnPartitionsAssigned(c.onAssigned),
		kgo.OnPartitionsRevoked(c.onRevoked),
		kgo.OnPartitionsLost(c.onLost),
		kgo.WithLogger(kgoLogger{c.log}),
		kgo.SessionTimeout(cfg.SessionTimeout),
		kgo.HeartbeatInterval(cfg.heartbeatInterval()),
		kgo.WithHooks(groupHook{c}),
		// franz-go's client metrics of the group client (orderstream_consumer_kafka_*{group}).
		kgo.WithHooks(kprom.NewMetrics("orderstream_consumer", kprom.Subsystem("kafka"), kprom.Registerer(reg),
			kprom.Gatherer(c.gath), kprom.WithStaticLabel(prometheus.Labels{"group": cfg.Group}),
			kprom.FetchAndProduceDetail(kprom.ByNode, kprom.ByTopic, kprom.Batches, kprom.Records, kprom.UncompressedBytes))),
	}
	if cfg.InstanceID != "" {
		kopts = append(kopts, kgo.InstanceID(cfg.InstanceID))
	}
	kopts = append(kopts, o.clientOpts...)
	c.cl, err = kgo.NewClient(kopts...)
	if err != nil {
		return nil, fmt.Errorf("consumer client: %w", err)
	}
	c.adm = kadm.NewClient(c.cl)
	return c, nil
}

// Config returns the consumer's configuration with defaults applied.
func (c *Consumer) Config() Config { return c.cfg }

// Gatherer returns the registry the metrics are registered with when it is
// also a Gatherer (always, unless WithRegisterer gave a bare Registerer).
func (c *Consumer) Gatherer() prometheus.Gatherer { return c.gath }

// Run consumes until ctx is cancelled or a fatal error occurs, and closes the
// client before it returns.
//
// On cancellation it stops polling, finishes the in-flight batch (write, DLQ,
// commit) within ShutdownTimeout, leaves the group (a static member stays in
// it, for a restart, up to SessionTimeout) and returns nil. Fatal errors: the
// DLQ topic cannot be created, a committed offset is out of range (an
// *OffsetOutOfRangeError naming partition, offset and log bounds), another
// member joined with this one's instance id (*FencedError), the broker
// refused SessionTimeout, in Strict mode a record
// that cannot be decoded or that the sink rejects (named by topic, partition
// and offset), or the in-flight batch not written before ShutdownTimeout.
// Transient sink errors are never returned: the batch is retried until the
// sink recovers.
func (c *Consumer) Run(ctx context.Context) error {
	if !c.started.CompareAndSwap(false, true) {
		return errors.New("consumer: Run called twice")
	}
	if c.closed.Load() {
		return errors.New("consumer: Run after Close")
	}
	c.running.Store(true)
	defer c.running.Store(false)

	// work outlives ctx by ShutdownTimeout: the in-flight batch is finished
	// under it after ctx is cancelled.
	work, cancelWork := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelWork()
	stopAfter := context.AfterFunc(ctx, func() {
		time.AfterFunc(c.cfg.ShutdownTimeout, cancelWork)
	})
	defer stopAfter()

	if err := c.startDLQ(ctx); err != nil {
		if ctx.Err() != nil {
			return c.Close() // stopped while starting: a clean exit, nothing was consumed
		}
		if gerr := c.groupErr.Load(); gerr != nil {
			err = *gerr // the group failed while starting and closed the client under us
		}
		return errors.Join(err, c.Close())
	}
	lagDone := make(chan struct{})
	lagCtx, stopLag := context.WithCancel(ctx)
	go func() { defer close(lagDone); c.refreshLagLoop(lagCtx) }()

	err := c.loop(ctx, work)
	stopLag()
	<-lagDone
	if err != nil {
		// Fatal: write and commit nothing more, leave at once.
		c.mu.Lock()
		c.noFlush = true
		c.mu.Unlock()
		return errors.Join(err, c.Close())
	}
	return c.shutdown(work)
}

// startDLQ creates the DLQ topic when missing and starts reading it (the
// group's parked orders), or, in strict mode, reads the projection's dead
// letters once.
func (c *Consumer) startDLQ(ctx context.Context) error {
	if c.cfg.Strict {
		return c.loadDeadLettered(ctx)
	}
	if err := c.ensureDLQTopic(ctx); err != nil {
		return err
	}
	// The reader lives until Close: a shutdown's last flush may need it.
	r, err := startDLQReader(context.Background(), c.cfg.Brokers, c.cfg.DLQTopic, NewDLQState(c.cfg.Group, false), c.dlqOpts...)
	if err != nil {
		return err
	}
	c.dl.Store(r)
	c.dlSync.Store(true)
	return nil
}

// loop polls and flushes until ctx is cancelled (nil) or a fatal error.
func (c *Consumer) loop(ctx, work context.Context) error {
	for {
		if ctx.Err() != nil {
			return nil
		}
		pollCtx, cancel := ctx, context.CancelFunc(func() {})
		c.mu.Lock()
		due, ok := c.batch.deadline()
		if r, pending := c.retry.due(); pending && (!ok || r.Before(due)) {
			due, ok = r, true
		}
		if ok {
			if time.Now().Before(due) {
				pollCtx, cancel = context.WithDeadline(ctx, due)
			} else {
				// Due already: take what the client holds without
				// waiting (franz-go: a nil context drains the buffer and
				// returns at once; an expired one returns nothing).
				pollCtx = nil
			}
		}
		size := c.batch.pollSize(c.cfg.MaxPollRecords)
		c.mu.Unlock()
		c.cl.AllowRebalance()
		fetches := c.cl.PollRecords(pollCtx, size)
		cancel()

		c.mu.Lock()
		c.mayRebalance = len(fetches) == 0 // a poll returning nothing holds nothing off
		err := c.absorb(fetches)
		if err == nil {
			recs := fetches.Records()
			c.batch.polled(len(recs), size)
			c.batch.gather(recs, c.owned)
		}
		for err == nil && c.batch.due(time.Now()) {
			err = c.tolerate(c.flushLocked(work, ctx))
		}
		if err == nil && c.retry.ready(time.Now()) {
			err = c.tolerate(c.recommitLocked(work))
		}
		c.mu.Unlock()
		if err = c.tolerate(err); err != nil {
			if errors.Is(err, context.Canceled) && ctx.Err() != nil {
				return nil // cancelled while retrying: shutdown finishes the batch
			}
			return err
		}
	}
}

// absorb classifies fetch errors and updates the lag state.
func (c *Consumer) absorb(fs Fetches) error {
	if err := c.groupErr.Load(); err != nil {
		return *err // the client was closed because of it
	}
	var fatal []error
	fs.EachError(func(topic string, p int32, err error) {
		switch {
		case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
			// our own poll deadline or shutdown
		case errors.Is(err, kgo.ErrClientClosed):
			fatal = append(fatal, fmt.Errorf("consumer client closed"))
		case errors.Is(err, kerr.OffsetOutOfRange):
			fatal = append(fatal, c.outOfRange(topic, p))
		default:
			c.log.Warn("fetch error; the client retries", "partition", p, "err", err)
		}
	})
	if len(fatal) > 0 {
		return errors.Join(fatal...)
	}
	c.stateMu.Lock()
	defer c.stateMu.Unlock()
	fs.EachPartition(func(fp kgo.FetchTopicPartition) {
		if fp.Err != nil {
			return
		}
		ps, ok := c.parts[fp.Partition]
		if !ok {
			return // revoked since the fetch
		}
		ps.hwm = max(ps.hwm, fp.HighWatermark)
		if ps.committed < 0 && len(fp.Records) > 0 {
			ps.committed = fp.Records[0].Offset // consumption started here
		}
		c.m.setLag(fp.Partition, ps)
	})
	return nil
}

// owned reports whether partition p is assigned to this member.
func (c *Consumer) owned(p int32) bool {
	c.stateMu.Lock()
	defer c.stateMu.Unlock()
	_, ok := c.parts[p]
	return ok
}

// tolerate logs and swallows a lone *CommitError (the batch is durable and
// is consumed again at worst) and returns any other error.
func (c *Consumer) tolerate(err error) error {
	var ce *CommitError
	var se *StrictError
	if errors.As(err, &ce) && !errors.As(err, &se) {
		c.log.Warn("offset commit failed", "err", err)
		return nil
	}
	return err
}

// Fetches is kgo.Fetches; named here to keep signatures short.
type Fetches = kgo.Fetches

// outOfRange builds the fatal error for a committed offset the log no longer
// (or not yet) holds. The fetch response carries no log bounds with the
// error (Kafka sends -1), so they are listed: the log start offset and the
// end offset (high watermark) of topic/p, within 10s.
func (c *Consumer) outOfRange(topic string, p int32) error {
	e := &OffsetOutOfRangeError{Topic: topic, Partition: p, Group: c.cfg.Group, Committed: -1, LogStart: -1, LogEnd: -1}
	if eo, ok := c.cl.CommittedOffsets()[topic][p]; ok {
		e.Committed = eo.Offset
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, l := range []struct {
		list func(context.Context, ...string) (kadm.ListedOffsets, error)
		to   *int64
	}{{c.adm.ListStartOffsets, &e.LogStart}, {c.adm.ListEndOffsets, &e.LogEnd}} {
		listed, err := l.list(ctx, topic)
		if err == nil {
			if o, ok := listed.Lookup(topic, p); ok && o.Err == nil {
				*l.to = o.Offset
				continue
			}
			err = listed.Error()
		}
		e.ListErr = errors.Join(e.ListErr, err)
	}
	return e
}

// OffsetOutOfRangeError reports that the group's committed offset of a
// partition lies outside the log (retention deleted it, or the topic was
// recreated). The runtime never resets it silently: the operator decides.
// LogStart and LogEnd are the partition's log start and end offsets listed
// when the error happened, -1 when listing them failed (ListErr says why);
// Committed is -1 when the client did not know it.
type OffsetOutOfRangeError struct {
	Topic     string
	Partition int32
	Group     string
	Committed int64
	LogStart  int64
	LogEnd    int64
	ListErr   error // why LogStart or LogEnd is unknown; nil when both are known
}

func (e *OffsetOutOfRangeError) Error() string {
	bounds := fmt.Sprintf("log start %d, log end %d", e.LogStart, e.LogEnd)
	if e.ListErr != nil {
		bounds = fmt.Sprintf("log bounds unknown: %v", e.ListErr)
		if e.LogStart >= 0 || e.LogEnd >= 0 {
			bounds = fmt.Sprintf("log start %d, log end %d; -1 unknown: %v", e.LogStart, e.LogEnd, e.ListErr)
		}
	}
	return fmt.Sprintf("topic %s partition %d: committed offset %d of group %s is out of range (%s): "+
		"events between were deleted or the topic was recreated; rebuild the read model with `orderstream replay --mode in-place` "+
		"or move the group's offset deliberately (kafka-consumer-groups --reset-offsets)",
		e.Topic, e.Partition, e.Committed, e.Group, bounds)
}

// FencedError stops Run when another member joined the group with this
// member's instance id (Config.InstanceID): the broker gave it this
// member's partitions and fences this one (FENCED_INSTANCE_ID). Rejoining
// would fence the other in turn, and so on; Run stops instead.
type FencedError struct {
	Group      string
	InstanceID string
	Err        error // wraps kerr.FencedInstanceID
}

func (e *FencedError) Error() string {
	return fmt.Sprintf("group %s: another process joined with instance id %q and took this member's partitions (%v); "+
		"every process of a group needs an instance id of its own (orderstream consume --instance-id, ORDERSTREAM_INSTANCE_ID)",
		e.Group, e.InstanceID, e.Err)
}

func (e *FencedError) Unwrap() error { return e.Err }

var _ kgo.HookGroupManageError = groupHook{}

// groupHook sees the errors of the client's group management loop, which
// otherwise retries them forever.
type groupHook struct{ c *Consumer }

// OnGroupManageError implements kgo.HookGroupManageError: an error no
// rejoin can cure is kept for Run and the client closed at once, before the
// loop's next join (≈250 ms later) could fence the member that fenced this
// one.
func (h groupHook) OnGroupManageError(err error) {
	c := h.c
	var fatal error
	switch {
	case errors.Is(err, kerr.FencedInstanceID):
		fatal = &FencedError{Group: c.cfg.Group, InstanceID: c.cfg.InstanceID, Err: err}
	case errors.Is(err, kerr.InvalidSessionTimeout):
		fatal = fmt.Errorf("group %s: session timeout %s refused by the broker (outside its group.min.session.timeout.ms … group.max.session.timeout.ms): %w",
			c.cfg.Group, c.cfg.SessionTimeout, err)
	default:
		return
	}
	if c.groupErr.CompareAndSwap(nil, &fatal) {
		go c.Close() // not here: Close waits for the loop that called us
	}
}

// partLocked returns the state of p, creating it; c.stateMu is held.
func (c *Consumer) partLocked(p int32) *partState {
	ps, ok := c.parts[p]
	if !ok {
		ps = &partState{hwm: -1, committed: -1}
		c.parts[p] = ps
	}
	return ps
}

// shutdown finishes the in-flight batch (and what was read ahead) under
// work, leaves the group and closes the client.
func (c *Consumer) shutdown(work context.Context) error {
	c.mu.Lock()
	err := c.flushAllLocked(work)
	if err != nil {
		err = fmt.Errorf("shutdown: in-flight batch not finished within %s (nothing of it committed; it is consumed again on restart): %w",
			c.cfg.ShutdownTimeout, err)
	}
	c.mu.Unlock()
	c.cl.AllowRebalance()
	if c.cfg.InstanceID != "" {
		c.log.Info("static member stopping without leaving the group: its partitions wait for a restart with the same instance id, at most the session timeout",
			"session_timeout", c.cfg.SessionTimeout)
	}
	if lerr := c.cl.LeaveGroupContext(work); lerr != nil && !errors.Is(lerr, context.Canceled) {
		err = errors.Join(err, fmt.Errorf("leave group %s: %w", c.cfg.Group, lerr))
	}
	c.log.Info("consumer stopped")
	return errors.Join(err, c.Close())
}

// Close leaves the group (a static member stays in it until SessionTimeout
// passes or it restarts) and closes the client; Run then returns. Records
// gathered but not written yet are written and committed by the revoke on
// leaving when the sink answers within ShutdownTimeout, else they are
// consumed again later. For a graceful stop cancel Run's context instead.
// Close is idempotent and safe to call concurrently with Run.
func (c *Consumer) Close() error {
	c.closeOnce.Do(func() {
		c.closed.Store(true)
		// Rebalances are blocked while polled records are held; leaving
		// the group must not wait for that.
		c.cl.AllowRebalance()
		c.cl.Close()
		if r := c.dl.Load(); r != nil {
			r.close()
		}
	})
	return nil
}

// onAssigned records newly assigned partitions.
func (c *Consumer) onAssigned(_ context.Context, _ *kgo.Client, assigned map[string][]int32) {
	c.stateMu.Lock()
	defer c.stateMu.Unlock()
	for _, p := range assigned[c.cfg.Topic] {
		c.partLocked(p)
	}
	// Orders parked by the partitions' previous owner must be known before
	// their next records are written.
	c.dlSync.Store(true)
	c.log.Info("partitions assigned", "partitions", assigned[c.cfg.Topic])
}

// flushAllLocked flushes the batch and then what was read ahead, without
// reading further, until nothing is gathered or a flush fails.
func (c *Consumer) flushAllLocked(ctx context.Context) error {
	for c.batch.promote(); len(c.batch.buf.recs) > 0; c.batch.promote() {
		if err := c.tolerate(c.flushLocked(ctx, nil)); err != nil {
			return err
		}
	}
	return nil
}

// onRevoked finishes the gathered batch (write, DLQ, commit) before the
// partitions move to another member. If the sink does not recover within
// ShutdownTimeout the records of the revoked partitions are dropped
// uncommitted: their new owner consumes them again from the committed offset.
func (c *Consumer) onRevoked(ctx context.Context, _ *kgo.Client, revoked map[string][]int32) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.batch.held() > 0 && !c.flushing && !c.noFlush {
		fctx, cancel := context.WithTimeout(ctx, c.cfg.ShutdownTimeout)
		err := c.flushAllLocked(fctx)
		cancel()
		if err != nil {
			c.log.Warn("batch not finished before partitions were revoked; their records are consumed again by the new owner",
				"partitions", revoked[c.cfg.Topic], "err", err)
		}
	}
	if _, pending := c.retry.due(); pending && !c.noFlush {
		// Written records of the partitions whose commit failed: commit
		// them now, so that their next owner does not consume them again.
		fctx, cancel := context.WithTimeout(ctx, c.cfg.ShutdownTimeout)
		if err := c.recommitLocked(fctx); err != nil {
			c.log.Warn("offsets of written records not committed before the revoke; their next owner consumes them again", "err", err)
		}
		cancel()
	}
	c.dropLocked(revoked[c.cfg.Topic])
	if len(revoked[c.cfg.Topic]) > 0 {
		c.log.Info("partitions revoked", "partitions", revoked[c.cfg.Topic])
	}
}

// onLost drops the gathered records of partitions taken away without a
// chance to commit; they are consumed again by their new owner.
func (c *Consumer) onLost(_ context.Context, _ *kgo.Client, lost map[string][]int32) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.dropLocked(lost[c.cfg.Topic])
	if len(lost[c.cfg.Topic]) > 0 {
		c.log.Warn("partitions lost; uncommitted records are consumed again by their new owner", "partitions", lost[c.cfg.Topic])
	}
}

// dropLocked forgets partitions ps: their buffered records and lag state.
func (c *Consumer) dropLocked(ps []int32) {
	if len(ps) == 0 {
		return
	}
	c.stateMu.Lock()
	for _, p := range ps {
		delete(c.parts, p)
		c.m.dropPartition(p)
	}
	c.stateMu.Unlock()
	c.batch.drop(ps)
}

// kgoLogger sends the client's warnings and errors to slog.
type kgoLogger struct{ log *slog.Logger }

func (l kgoLogger) Level() kgo.LogLevel { return kgo.LogLevelWarn }

func (l kgoLogger) Log(level kgo.LogLevel, msg string, keyvals ...any) {
	switch level {
	case kgo.LogLevelError:
		l.log.Error(msg, keyvals...)
	case kgo.LogLevelWarn:
		l.log.Warn(msg, keyvals...)
	default:
		l.log.Debug(msg, keyvals...)
	}
}
