package rebuild

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/orderstream/orderstream/consumers"
	"github.com/orderstream/orderstream/projections"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Defaults of ShadowConfig.
const (
	// DefaultSettle is how long after creating the new generation the end
	// offsets to reach are listed, at the earliest: twice the analytics
	// sink's generation refresh (5 s), so that every event a daemon wrote
	// before it noticed the new generation lies below those offsets.
	DefaultSettle           = 10 * time.Second
	DefaultProgressInterval = time.Second
	DefaultKeep             = 1
	// DefaultRebuildBatchRecords is larger than the daemon's batch: a
	// rebuild reads a backlog, and ClickHouse prefers large inserts.
	DefaultRebuildBatchRecords = 20000
	// DefaultMembers consumers share a rebuild's partitions, so that one
	// waits on the read model while another decodes and sends.
	DefaultMembers = 2
)

// ShadowConfig configures a shadow rebuild. Brokers and Topic are required.
type ShadowConfig struct {
	// Brokers are the Kafka seed brokers, host:port. Required.
	Brokers []string
	// Topic is the topic of order events. Required.
	Topic string
	// Group names the rebuild's consumer group; "" means
	// GroupName(projection, generation). It must not have committed
	// offsets (it is deleted first when it has no members).
	Group string
	// Settle is the earliest time after the new generation exists at which
	// the end offsets to reach are listed (default DefaultSettle, 10 s).
	// Must be at least the daemons' generation refresh.
	Settle time.Duration
	// Keep is how many previous generations stay after the cutover for
	// Rollback (0 means the default, 1); older ones are dropped. Negative
	// keeps all.
	Keep int
	// Members is the number of consumers of the rebuild's group, each with
	// a sink of its own, writing their shares of the partitions at the same
	// time (default DefaultMembers, 2).
	Members int
	// BatchMaxRecords, BatchMaxBytes and BatchMaxWait tune the rebuild's
	// batches (defaults DefaultRebuildBatchRecords, the runtime's 16 MiB and
	// 500 ms).
	BatchMaxRecords int
	BatchMaxBytes   int
	BatchMaxWait    time.Duration
	// ProgressInterval is how often Progress is called (default 1 s).
	ProgressInterval time.Duration
	// Progress, when set, receives the rebuild's progress every
	// ProgressInterval and once per phase change, from one goroutine.
	Progress func(Progress)
	// SkipDeadLettered skips (and lists in Result.Skipped) the records the
	// projection's daemons dead-lettered or parked at the same topic,
	// partition and offset and that were not re-driven since, instead of
	// stopping at them (consumers.Config.SkipDeadLettered). Default false.
	SkipDeadLettered bool
	// ClientOpts are added to the rebuild's Kafka clients: how to reach
	// Kafka (TLS, SASL: internal/connect.Kafka.ClientOpts) and test settings.
	ClientOpts []kgo.Opt
	// WriteSide is what the new generation is compared with before the
	// cutover (CheckCutover). Required.
	WriteSide WriteSide
	// Force cuts over even when CheckCutover finds the new generation
	// incomplete, logging what it overrode at WARN.
	Force bool
}

func (c *ShadowConfig) setDefaults() {
	if c.Settle == 0 {
		c.Settle = DefaultSettle
	}
	if c.Keep == 0 {
		c.Keep = DefaultKeep
	}
	if c.BatchMaxRecords == 0 {
		c.BatchMaxRecords = DefaultRebuildBatchRecords
	}
	if c.Members == 0 {
		c.Members = DefaultMembers
	}
	if c.ProgressInterval == 0 {
		c.ProgressInterval = DefaultProgressInterval
	}
}

// Validate reports every problem of c at once.
func (c ShadowConfig) Validate() error {
	var errs []error
	if len(c.Brokers) == 0 {
		errs = append(errs, errors.New("brokers: at least one seed broker is required"))
	}
	if c.Topic == "" {
		errs = append(errs, errors.New("topic: required"))
	}
	if c.Settle < 0 || c.BatchMaxWait < 0 || c.ProgressInterval < 0 {
		errs = append(errs, errors.New("settle, batch max wait and progress interval must not be negative"))
	}
	if c.Members < 0 || c.Members > 64 {
		errs = append(errs, fmt.Errorf("members %d: want 1..64", c.Members))
	}
	if c.BatchMaxRecords < 0 || c.BatchMaxBytes < 0 {
		errs = append(errs, errors.New("batch bounds must not be negative"))
	}
	if c.WriteSide == nil {
		errs = append(errs, errors.New("write side: required (the new generation is compared with it before the cutover)"))
	}
	return errors.Join(errs...)
}

// GroupName is the consumer group of a rebuild of generation n of
// projection: orderstream-<projection>-g<n>.
func GroupName(projection string, n uint32) string {
	return "orderstream-" + projection + "-g" + strconv.FormatUint(uint64(n), 10)
}

// Phases of a rebuild, in order.
const (
	PhaseReplaying = "replaying" // reading the topic into the new generation
	PhaseCatching  = "catching"  // ends listed; reaching them
	PhaseCutover   = "cutover"   // switching readers
	PhaseDone      = "done"
)

// Progress is a snapshot of a running rebuild.
type Progress struct {
	Projection string
	Generation uint32
	Group      string
	Phase      string
	Elapsed    time.Duration
	// Processed is the records committed by the rebuild's group, Total the
	// records to reach (the topic's current ends, or the listed target
	// ends once caught up).
	Processed, Total int64
	// Rate is Processed / Elapsed, in events per second.
	Rate float64
	// ETA estimates the time left from the rate of the last interval; 0
	// when unknown.
	ETA        time.Duration
	Partitions []consumers.PartitionLag
}

// Result is what a finished shadow rebuild did.
type Result struct {
	Projection string        `json:"projection"`
	Generation uint32        `json:"generation"`          // serving now
	Previous   uint32        `json:"previous_generation"` // kept for rollback (0: none)
	Group      string        `json:"group"`               // deleted
	Events     int64         `json:"events"`              // records replayed up to the target ends
	Duration   time.Duration `json:"duration_ns"`
	Dropped    []uint32      `json:"dropped_generations"` // by the Keep retention
	// Skipped are the dead-lettered records skipped (SkipDeadLettered), by
	// partition and offset.
	Skipped []consumers.DLQEntry `json:"skipped,omitempty"`
	// Forced lists the failed checks a forced cutover overrode (Force);
	// empty when every check passed.
	Forced []string `json:"forced,omitempty"`
}

// Rate returns Events per second of Duration.
func (r Result) Rate() float64 {
	if r.Duration <= 0 {
		return 0
	}
	return float64(r.Events) / r.Duration.Seconds()
}

// LeftoverError reports a rebuild that stopped and could not drop the
// generation it was building (drop it by hand) nor, perhaps, its group.
type LeftoverError struct {
	Projection string
	Generation uint32
	Err        error // why the rebuild stopped
	Cleanup    error // why the cleanup failed
}

func (e *LeftoverError) Error() string {
	return fmt.Sprintf("rebuild of %s generation %d stopped: %v (cleaning up failed too: %v; generation %d is left behind)",
		e.Projection, e.Generation, e.Err, e.Cleanup, e.Generation)
}

// Unwrap returns why the rebuild stopped.
func (e *LeftoverError) Unwrap() error { return e.Err }

// BusyError reports a generation already being built.
type BusyError struct {
	Projection string
	Generation uint32
	Group      string
	Members    []consumers.Member // members of the rebuild's group: a rebuild is running
}

func (e *BusyError) Error() string {
	if len(e.Members) > 0 {
		return fmt.Sprintf("%s generation %d is being rebuilt right now by group %s (%s); wait for it or stop it",
			e.Projection, e.Generation, e.Group, consumers.Group{Members: e.Members}.MembersString())
	}
	return fmt.Sprintf("%s generation %d is building but no rebuild runs (an earlier rebuild was killed): drop it first",
		e.Projection, e.Generation)
}

// Shadow rebuilds p into a new generation from offset zero while the
// serving generation keeps answering, then cuts over (see the package doc).
//
// Before the cutover CheckCutover judges the new generation (log start
// offsets 0, every record of the range written, orders and versions equal
// to cfg.WriteSide's); without cfg.Force a failed check stops the rebuild
// with a *GuardError (errors.Is ErrCutoverRefused).
//
// It fails with a *BusyError when a generation is already building, with a
// *consumers.StrictError (wrapped) when an event cannot be applied, with a
// *GuardError when the new generation is not shown complete, or with
// the error of any step; on failure or ctx cancellation the new generation
// and the rebuild's group are dropped (the serving generation was never
// touched) and the error says so. log receives the steps.
func Shadow(ctx context.Context, p projections.ReadModel, cfg ShadowConfig, log *slog.Logger) (Result, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return Result{}, fmt.Errorf("shadow rebuild config: %w", err)
	}
	if log == nil {
		log = slog.Default()
	}
	res := Result{Projection: p.Name()}
	kcl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(cfg.Brokers...)}, cfg.ClientOpts...)...)
	if err != nil {
		return res, fmt.Errorf("kafka client: %w", err)
	}
	defer kcl.Close()
	adm := kadm.NewClient(kcl)

	gens, err := p.Generations(ctx)
	if err != nil {
		return res, err
	}
	if b := projections.Building(gens); len(b) > 0 {
		busy := &BusyError{Projection: p.Name(), Generation: b[0], Group: GroupName(p.Name(), b[0])}
		if g, err := consumers.InspectGroup(ctx, adm, cfg.Topic, busy.Group); err == nil {
			busy.Members = g.Members
		}
		return res, busy
	}
	if _, _, err := consumers.TopicOffsets(ctx, adm, cfg.Topic); err != nil {
		return res, err
	}
	n, err := p.NextGeneration(ctx)
	if err != nil {
		return res, err
	}
	group := cfg.Group
	if group == "" {
		group = GroupName(p.Name(), n)
	}
	res.Generation, res.Group = n, group
	if g, err := consumers.InspectGroup(ctx, adm, cfg.Topic, group); err != nil {
		return res, err
	} else if len(g.Members) > 0 {
		return res, fmt.Errorf("rebuild group %s has members (%s): another rebuild is running", group, g.MembersString())
	} else if g.Exists() {
		if err := consumers.DeleteGroup(ctx, adm, group); err != nil {
			return res, err
		}
	}

	start := time.Now()
	if err := p.CreateGeneration(ctx, n); err != nil {
		return res, fmt.Errorf("create %s generation %d: %w", p.Name(), n, err)
	}
	log.Info("rebuild started", "projection", p.Name(), "generation", n, "group", group, "topic", cfg.Topic)
	created := time.Now()

	fail := func(err error) (Result, error) {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		cleanup := errors.Join(p.DropGeneration(cctx, n), consumers.DeleteGroup(cctx, adm, group))
		if cleanup != nil {
			return res, &LeftoverError{Projection: p.Name(), Generation: n, Err: err, Cleanup: cleanup}
		}
		return res, fmt.Errorf("rebuild of %s generation %d stopped, generation %d dropped, generation %d still serving: %w",
			p.Name(), n, n, projections.Serving(gens), err)
	}

	ccfg := consumers.Config{
		Brokers: cfg.Brokers, Topic: cfg.Topic, Group: group, Projection: p.Name(), Strict: true, SkipDeadLettered: cfg.SkipDeadLettered,
		BatchMaxRecords: cfg.BatchMaxRecords, BatchMaxBytes: cfg.BatchMaxBytes, BatchMaxWait: cfg.BatchMaxWait,
		MaxPollRecords: cfg.BatchMaxRecords,
	}
	var (
		members  []*consumers.Consumer
		closers  []func() error
		consumed = NewConsumed()
	)
	closeSinks := func() error {
		var errs []error
		for _, c := range closers {
			errs = append(errs, c())
		}
		return errors.Join(errs...)
	}
	for range cfg.Members {
		sink, closeSink, err := p.Sink(ctx, n)
		if err != nil {
			return fail(errors.Join(err, closeSinks()))
		}
		closers = append(closers, closeSink)
		cons, err := consumers.New(ccfg, countWrites(sink, consumed), consumers.WithLogger(log), consumers.WithClientOpts(cfg.ClientOpts...))
		if err != nil {
			return fail(errors.Join(err, closeSinks()))
		}
		members = append(members, cons)
	}
	// The members run until stopped; the first that fails (strict mode)
	// stops the others.
	runCtx, stopRun := context.WithCancel(ctx)
	defer stopRun()
	var (
		runMu   sync.Mutex
		runErrs []error
		wg      sync.WaitGroup
	)
	for _, cons := range members {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := cons.Run(runCtx); err != nil {
				runMu.Lock()
				runErrs = append(runErrs, err)
				runMu.Unlock()
				stopRun()
			}
		}()
	}
	runDone := make(chan struct{})
	go func() { wg.Wait(); close(runDone) }()
	stop := func() error {
		stopRun()
		<-runDone
		runMu.Lock()
		defer runMu.Unlock()
		return errors.Join(errors.Join(runErrs...), closeSinks())
	}

	events, ev, err := follow(ctx, adm, cfg, p.Name(), n, group, start, created, runDone)
	if err != nil {
		serr := stop()
		if errors.Is(err, errRunEnded) {
			err = serr
			if err == nil {
				err = errors.New("the rebuild consumer stopped before catching up")
			}
		}
		return fail(err)
	}
	if err := stop(); err != nil {
		return fail(fmt.Errorf("stop the rebuild consumer: %w", err))
	}
	res.Events = events
	res.Skipped = skippedBy(members)

	elapsed := time.Since(start)
	report(cfg, Progress{Projection: p.Name(), Generation: n, Group: group, Phase: PhaseCutover, Elapsed: elapsed,
		Processed: events, Total: events, Rate: float64(events) / max(elapsed.Seconds(), 1e-9)})
	ev.Consumed, ev.Skipped = consumed, res.Skipped
	gcfg := GuardConfig{Brokers: cfg.Brokers, Topic: cfg.Topic, WriteSide: cfg.WriteSide, Force: cfg.Force, ClientOpts: cfg.ClientOpts}
	forced, err := CheckCutover(ctx, p, n, ev, gcfg, log)
	if err != nil {
		return fail(err)
	}
	res.Forced = forced
	if err := p.Cutover(ctx, n); err != nil {
		return fail(fmt.Errorf("cutover: %w", err))
	}
	res.Previous = projections.Serving(gens)
	res.Duration = time.Since(start)
	log.Info("cutover done", "projection", p.Name(), "generation", n, "previous", res.Previous, "events", events,
		"seconds", res.Duration.Seconds())
	// From here on the rebuild succeeded: what is left is housekeeping.
	hctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
	defer cancel()
	if err := consumers.DeleteGroup(hctx, adm, group); err != nil {
		log.Warn("could not delete the rebuild group; delete it by hand", "group", group, "err", err)
	}
	dropped, err := Retain(hctx, p, cfg.Keep)
	res.Dropped = dropped
	if err != nil {
		log.Warn("retention: could not drop old generations", "projection", p.Name(), "err", err)
	}
	report(cfg, Progress{Projection: p.Name(), Generation: n, Group: group, Phase: PhaseDone, Elapsed: res.Duration, Processed: events, Total: events, Rate: res.Rate()})
	return res, nil
}

var errRunEnded = errors.New("rebuild consumer ended")

// skippedBy gathers the records the members skipped, by partition and
// offset.
func skippedBy(members []*consumers.Consumer) []consumers.DLQEntry {
	var out []consumers.DLQEntry
	for _, m := range members {
		out = append(out, m.Skipped()...)
	}
	slices.SortFunc(out, func(a, b consumers.DLQEntry) int {
		return cmp.Or(cmp.Compare(a.SourcePartition, b.SourcePartition), cmp.Compare(a.SourceOffset, b.SourceOffset))
	})
	return slices.CompactFunc(out, func(a, b consumers.DLQEntry) bool {
		return a.SourcePartition == b.SourcePartition && a.SourceOffset == b.SourceOffset
	})
}

func report(cfg ShadowConfig, p Progress) {
	if cfg.Progress != nil {
		cfg.Progress(p)
	}
}

// follow watches the rebuild's group until it reached the target ends: the
// topic's end offsets listed once Settle has passed since created. It
// returns the records replayed up to them and the range replayed (log start
// and target end offsets; Consumed left nil).
func follow(ctx context.Context, adm *kadm.Client, cfg ShadowConfig, name string, n uint32, group string,
	start, created time.Time, runDone <-chan struct{}) (int64, Evidence, error) {
	var target, starts map[int32]int64
	var lastProcessed int64
	lastAt := start
	tick := time.NewTicker(cfg.ProgressInterval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return 0, Evidence{}, ctx.Err()
		case <-runDone: // Run ended on its own; stop returns its error
			return 0, Evidence{}, errRunEnded
		case <-tick.C:
		}
		ictx, cancel := context.WithTimeout(ctx, 10*time.Second)
		g, err := consumers.InspectGroup(ictx, adm, cfg.Topic, group)
		cancel()
		if err != nil {
			if ctx.Err() != nil {
				return 0, Evidence{}, ctx.Err()
			}
			continue // a broker hiccup: the next tick retries
		}
		phase := PhaseReplaying
		if target == nil && time.Since(created) >= cfg.Settle {
			target, starts = map[int32]int64{}, map[int32]int64{}
			for _, pl := range g.Partitions {
				target[pl.Partition], starts[pl.Partition] = pl.End, pl.Start
			}
		}
		ends := target
		if ends == nil {
			ends = map[int32]int64{}
			for _, pl := range g.Partitions {
				ends[pl.Partition] = pl.End
			}
		} else {
			phase = PhaseCatching
		}
		var processed, total int64
		for _, pl := range g.Partitions {
			processed += min(pl.Position(), ends[pl.Partition]) - pl.Start
			total += ends[pl.Partition] - pl.Start
		}
		now := time.Now()
		p := Progress{Projection: name, Generation: n, Group: group, Phase: phase, Elapsed: now.Sub(start),
			Processed: processed, Total: total, Partitions: g.Partitions}
		if s := p.Elapsed.Seconds(); s > 0 {
			p.Rate = float64(processed) / s
		}
		if d := now.Sub(lastAt).Seconds(); d > 0 && processed > lastProcessed {
			recent := float64(processed-lastProcessed) / d
			p.ETA = time.Duration(float64(total-processed) / recent * float64(time.Second))
		}
		lastProcessed, lastAt = processed, now
		report(cfg, p)
		if target != nil && g.CaughtUp(target) {
			return processed, Evidence{Starts: starts, Ends: target}, nil
		}
	}
}

// Retain drops the generations older than the serving one beyond the keep
// newest (keep < 0 keeps all) and returns their numbers, ascending.
func Retain(ctx context.Context, p projections.ReadModel, keep int) ([]uint32, error) {
	if keep < 0 {
		return nil, nil
	}
	gens, err := p.Generations(ctx)
	if err != nil {
		return nil, err
	}
	serving := projections.Serving(gens)
	var older []uint32
	for _, g := range gens {
		if g.Number < serving && g.State != projections.StateServing {
			older = append(older, g.Number)
		}
	}
	slices.Sort(older)
	if len(older) <= keep {
		return nil, nil
	}
	drop := older[:len(older)-keep]
	var dropped []uint32
	for _, n := range drop {
		if err := p.DropGeneration(ctx, n); err != nil {
			return dropped, fmt.Errorf("drop %s generation %d: %w", p.Name(), n, err)
		}
		dropped = append(dropped, n)
	}
	return dropped, nil
}
