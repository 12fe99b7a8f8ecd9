package rebuild

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/orderstream/orderstream/consumers"
	"github.com/orderstream/orderstream/producer/topic"
	"github.com/orderstream/orderstream/projections"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// ErrCutoverRefused is wrapped by a *GuardError: the evidence does not show
// a complete generation, so nothing was cut over.
var ErrCutoverRefused = errors.New("cutover refused")

// GuardError lists why the cutover to a generation was refused.
type GuardError struct {
	Projection string
	Generation uint32
	// Findings says what is missing, one line per fact: a partition's log
	// start offset, records not consumed, orders missing or stale.
	Findings []string
	// WriteSide is the comparison with the write side when it found
	// orders missing or stale; nil otherwise.
	WriteSide *VersionDiff
}

func (e *GuardError) Error() string {
	return fmt.Sprintf("%v: %s generation %d is not shown complete:\n  %s\n(cut over anyway with --force)",
		ErrCutoverRefused, e.Projection, e.Generation, strings.Join(e.Findings, "\n  "))
}

// Unwrap makes errors.Is(err, ErrCutoverRefused) hold.
func (e *GuardError) Unwrap() error { return ErrCutoverRefused }

// Evidence is what a cutover to a generation is judged on (CheckCutover).
type Evidence struct {
	// Starts is the log start offset of every partition when the rebuild's
	// range was fixed (partition → offset); every one must be 0.
	Starts map[int32]int64
	// Ends are the rebuild's end offsets: events below them were replayed,
	// events at or above them are in flight (the daemons apply them).
	Ends map[int32]int64
	// Consumed is what the rebuild wrote to the new generation, by offset;
	// nil for a cutover that follows no rebuild of this process (then only
	// the log start offsets and the write side are checked).
	Consumed *Consumed
	// Skipped are the records the rebuild skipped on request because the
	// daemons dead-lettered or parked them (ShadowConfig.SkipDeadLettered).
	// They count as accounted for in check 2, and their orders are left
	// out of check 3: the serving generation lacks their events as well
	// until a re-drive applies them.
	Skipped []consumers.DLQEntry
}

// GuardConfig configures CheckCutover.
type GuardConfig struct {
	// Brokers and Topic locate the events topic. Required.
	Brokers []string
	Topic   string
	// WriteSide is compared with the new generation. Required.
	WriteSide WriteSide
	// Force cuts over although checks failed, logging each at WARN.
	Force bool
	// ClientOpts are added to the Kafka clients: how to reach Kafka (TLS,
	// SASL: internal/connect.Kafka.ClientOpts) and test settings.
	ClientOpts []kgo.Opt
}

// Validate reports every problem of c at once.
func (c GuardConfig) Validate() error {
	var errs []error
	if len(c.Brokers) == 0 {
		errs = append(errs, errors.New("guard: brokers: at least one seed broker is required"))
	}
	if c.Topic == "" {
		errs = append(errs, errors.New("guard: topic: required"))
	}
	if c.WriteSide == nil {
		errs = append(errs, errors.New("guard: write side: required (the new generation is compared with it)"))
	}
	return errors.Join(errs...)
}

// CheckCutover judges whether generation n of p may serve:
//
//  1. every partition's log start offset in ev.Starts is 0 (a shadow
//     rebuild replays from offset zero only; it accepts no other starting
//     point);
//  2. with ev.Consumed: the distinct records written to n in [start, end)
//     equal end − start on every partition (nothing skipped);
//  3. p's order versions of n (ReadModel.OrderVersions) agree with cfg.WriteSide
//     (CompareVersions), counting as in flight the events relayed past
//     ev.Ends.
//
// It returns no error when all hold; else a *GuardError with every finding,
// or, with cfg.Force, the findings it overrode (and one WARN line naming
// them) and no error. A
// check that cannot be made (write side unreachable, relay behind) is a
// finding too. Problems of the topic's settings (finite retention,
// compaction) do not refuse a cutover: they are logged at WARN.
func CheckCutover(ctx context.Context, p projections.ReadModel, n uint32, ev Evidence, cfg GuardConfig, log *slog.Logger) (overridden []string, err error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.Default()
	}
	findings := topic.StartProblems(ev.Starts)
	if ev.Consumed != nil {
		for _, s := range ev.Skipped {
			ev.Consumed.Add(s.SourcePartition, s.SourceOffset)
		}
		findings = append(findings, ev.Consumed.Problems(ev.Starts, ev.Ends)...)
	}
	kcl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(cfg.Brokers...)}, cfg.ClientOpts...)...)
	if err != nil {
		return nil, fmt.Errorf("kafka client: %w", err)
	}
	defer kcl.Close()
	adm := kadm.NewClient(kcl)
	if r, err := topic.CheckReplayable(ctx, adm, cfg.Topic); err == nil && len(r.Info.Problems()) > 0 {
		log.Warn("the topic may delete events: later rebuilds may miss some", "topic", cfg.Topic,
			"problems", strings.Join(r.Info.Problems(), "; "))
	}
	var failed *VersionDiff
	began := time.Now()
	diff, err := compareWriteSide(ctx, adm, p, n, ev, cfg)
	if err != nil {
		findings = append(findings, "write side comparison not possible: "+err.Error())
	} else if !diff.OK() {
		findings = append(findings, "write side: "+diff.String())
		failed = &diff
	}
	if len(findings) == 0 {
		log.Info("cutover checks passed", "projection", p.Name(), "generation", n, "write_side", diff.String(),
			"compare_seconds", time.Since(began).Seconds())
		return nil, nil
	}
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	if cfg.Force {
		log.Warn("cutover FORCED although the evidence does not show a complete generation (--force)",
			"projection", p.Name(), "generation", n, "overridden", strings.Join(findings, "; "))
		return findings, nil
	}
	return nil, &GuardError{Projection: p.Name(), Generation: n, Findings: findings, WriteSide: failed}
}

// compareWriteSide compares generation n of p with the write side.
func compareWriteSide(ctx context.Context, adm *kadm.Client, p projections.ReadModel, n uint32, ev Evidence, cfg GuardConfig) (VersionDiff, error) {
	want, got, pending, err := versionsOf(ctx, adm, p, n, ev, cfg)
	if err != nil {
		return VersionDiff{}, err
	}
	return CompareVersions(want, got, pending), nil
}

// versionsOf reads what CompareVersions compares: the write side's
// versions once relayed (want, without the orders of ev.Skipped), the
// versions of generation n of p (got), and the lowest version per order
// among the records relayed past ev.Ends (pending; a partition absent from
// ev.Ends from offset 0).
func versionsOf(ctx context.Context, adm *kadm.Client, p projections.ReadModel, n uint32, ev Evidence, cfg GuardConfig) (want, got, pending Versions, err error) {
	want, err = cfg.WriteSide.RelayedVersions(ctx)
	if err != nil {
		return nil, nil, nil, err
	}
	for _, s := range ev.Skipped {
		delete(want, s.OrderID) // skipped on request: judged by the re-drive, not here
	}
	pending, err = pendingPast(ctx, adm, ev, cfg)
	if err != nil {
		return nil, nil, nil, err
	}
	got, err = p.OrderVersions(ctx, n)
	if err != nil {
		return nil, nil, nil, err
	}
	return want, got, pending, nil
}

// pendingPast returns the lowest version per order among the records of
// cfg.Topic past ev.Ends (a partition absent from ev.Ends from offset 0) up
// to the end offsets now. Call it after the write side's snapshot was
// relayed: every event of the snapshot then lies below these ends.
func pendingPast(ctx context.Context, adm *kadm.Client, ev Evidence, cfg GuardConfig) (Versions, error) {
	_, ends, err := consumers.TopicOffsets(ctx, adm, cfg.Topic)
	if err != nil {
		return nil, err
	}
	from := map[int32]int64{}
	maps.Copy(from, ev.Ends)
	for part := range ends {
		if _, ok := from[part]; !ok {
			from[part] = 0
		}
	}
	return PendingVersions(ctx, cfg.Brokers, cfg.Topic, from, ends, cfg.ClientOpts...)
}

// Consumed records which offsets of each partition a rebuild wrote to its
// generation, as sorted disjoint ranges (a rebuild writes in offset order,
// so this stays a few ranges; redeliveries after a rebalance merge in).
// Safe for concurrent use.
type Consumed struct {
	mu    sync.Mutex
	parts map[int32][]offsetRange
}

type offsetRange struct{ from, to int64 } // [from, to)

// NewConsumed returns an empty record.
func NewConsumed() *Consumed { return &Consumed{parts: map[int32][]offsetRange{}} }

// Add records offset o of partition p as written.
func (c *Consumed) Add(p int32, o int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	rs := c.parts[p]
	if n := len(rs); n > 0 && rs[n-1].to == o { // the usual case: the next offset
		rs[n-1].to++
		return
	}
	i := sort.Search(len(rs), func(i int) bool { return rs[i].to >= o })
	if i < len(rs) && rs[i].from <= o && o < rs[i].to {
		return // already recorded
	}
	if i < len(rs) && rs[i].to == o {
		rs[i].to++
	} else if i < len(rs) && rs[i].from == o+1 {
		rs[i].from--
	} else {
		rs = slices.Insert(rs, i, offsetRange{o, o + 1})
	}
	// Merge with the next range when they now touch.
	if i+1 < len(rs) && rs[i].to >= rs[i+1].from {
		rs[i].to = max(rs[i].to, rs[i+1].to)
		rs = slices.Delete(rs, i+1, i+2)
	}
	c.parts[p] = rs
}

// Count returns how many distinct offsets of partition p in [from, to)
// were recorded, and the first offset in it that was not (-1: none).
func (c *Consumed) Count(p int32, from, to int64) (n, firstMissing int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	firstMissing = -1
	next := from
	for _, r := range c.parts[p] {
		lo, hi := max(r.from, from), min(r.to, to)
		if lo >= hi {
			continue
		}
		if lo > next && firstMissing < 0 {
			firstMissing = next
		}
		n += hi - lo
		next = hi
	}
	if next < to && firstMissing < 0 {
		firstMissing = next
	}
	return n, firstMissing
}

// Problems names every partition of ends where fewer records than
// end − start were written, with the first offset missing.
func (c *Consumed) Problems(starts, ends map[int32]int64) []string {
	var out []string
	for _, p := range slices.Sorted(maps.Keys(ends)) {
		from, to := starts[p], ends[p]
		n, miss := c.Count(p, from, to)
		if want := to - from; n != want {
			out = append(out, fmt.Sprintf("partition %d: the rebuild wrote %d records of offsets %d..%d, want %d (end − start); first offset not written: %d",
				p, n, from, to-1, want, miss))
		}
	}
	return out
}

// countingSink records in a Consumed every record its sink wrote
// successfully; it keeps the sink's Preparer capability.
type countingSink struct {
	consumers.Sink
	c *Consumed
}

// countingPreparer is a countingSink of a consumers.Preparer.
type countingPreparer struct {
	countingSink
	p consumers.Preparer
}

// countWrites wraps s so that c records what it wrote.
func countWrites(s consumers.Sink, c *Consumed) consumers.Sink {
	cs := countingSink{Sink: s, c: c}
	if p, ok := s.(consumers.Preparer); ok {
		return countingPreparer{countingSink: cs, p: p}
	}
	return cs
}

func (s countingSink) Write(ctx context.Context, batch []consumers.Record) error {
	if err := s.Sink.Write(ctx, batch); err != nil {
		return err
	}
	s.record(batch)
	return nil
}

func (s countingSink) record(batch []consumers.Record) {
	for _, r := range batch {
		s.c.Add(r.Partition, r.Offset)
	}
}

func (s countingPreparer) Prepare(batch []consumers.Record) consumers.Prepared {
	return countedPrepared{Prepared: s.p.Prepare(batch), s: s.countingSink, batch: batch}
}

type countedPrepared struct {
	consumers.Prepared
	s     countingSink
	batch []consumers.Record
}

func (p countedPrepared) Write(ctx context.Context) error {
	if err := p.Prepared.Write(ctx); err != nil {
		return err
	}
	p.s.record(p.batch)
	return nil
}

// GroupEvidence is the Evidence of a cutover that follows no rebuild of
// this process (`generations cutover N`): the topic's log start offsets now
// and, as end offsets, the committed offsets of group, the consumer group
// that fills the generation (the daemon's); events at or past them are in
// flight. A partition the group never committed on ends at its log start.
func GroupEvidence(ctx context.Context, adm *kadm.Client, topicName, group string) (Evidence, error) {
	g, err := consumers.InspectGroup(ctx, adm, topicName, group)
	if err != nil {
		return Evidence{}, err
	}
	ev := Evidence{Starts: map[int32]int64{}, Ends: map[int32]int64{}}
	for _, pl := range g.Partitions {
		ev.Starts[pl.Partition], ev.Ends[pl.Partition] = pl.Start, pl.Position()
	}
	return ev, nil
}
