package consumers

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/cenkalti/backoff/v5"
	"github.com/google/uuid"
	"github.com/orderstream/orderstream/internal/parallel"
	"github.com/orderstream/orderstream/internal/retry"
	"github.com/orderstream/orderstream/internal/tracing"
	"github.com/orderstream/orderstream/schemas"
	"github.com/twmb/franz-go/pkg/kgo"
)

// failure is a record that goes to the DLQ (or stops a strict run).
type failure struct {
	rec       *kgo.Record
	reason    error
	kind      string // KindDecode, KindRejected or KindParked
	eventID   string
	attempts  int
	firstFail time.Time
}

// StrictError stops a strict run at the first record that cannot be decoded
// or that the sink rejected. Everything before it in its partition was
// written and committed.
type StrictError struct {
	Topic     string
	Partition int32
	Offset    int64
	EventID   string // empty when the record could not be decoded
	Reason    error
	// DeadLetteredBy is the consumer group whose daemon dead-lettered the
	// record at this position (not re-driven since); "" when none did.
	DeadLetteredBy string
}

func (e *StrictError) Error() string {
	id := ""
	if e.EventID != "" {
		id = " (event " + e.EventID + ")"
	}
	hint := ""
	if e.DeadLetteredBy != "" {
		hint = fmt.Sprintf(" (group %s dead-lettered it already; `orderstream replay --skip-dead-lettered` skips the records the daemons dead-lettered, listing each)", e.DeadLetteredBy)
	}
	return fmt.Sprintf("strict mode: topic %s partition %d offset %d%s cannot be applied: %v%s", e.Topic, e.Partition, e.Offset, id, e.Reason, hint)
}

func (e *StrictError) Unwrap() error { return e.Reason }

// flushLocked writes the gathered batch, sends failures to the DLQ and
// commits, in that order (see flusher). A transient sink error is retried
// with backoff (fetching of the batch's partitions paused) until the sink
// recovers or ctx ends; then the ctx error is returned and the batch stays
// gathered, nothing of it committed. A failed commit returns a
// *CommitError after the batch was done with (written, dead-lettered,
// forgotten). c.mu is held; it is released while waiting between attempts
// so that rebalances can proceed.
//
// With a non-nil pollCtx (the poll loop's context; never from a group
// callback or the shutdown) the records that follow are polled, decoded and
// prepared (see readAhead) while the first write attempt is in flight. After
// a successful flush the batch is replaced by what was read ahead.
func (c *Consumer) flushLocked(ctx, pollCtx context.Context) error {
	c.flushing = true
	defer func() { c.flushing = false }()
	for {
		err := c.flushOnceLocked(ctx, pollCtx)
		if !errors.Is(err, errBatchChanged) {
			return err
		}
	}
}

// errBatchChanged: a rebalance dropped records of the batch while the flush
// waited between attempts; the flush starts again on what is left.
var errBatchChanged = errors.New("batch changed by a rebalance")

func (c *Consumer) flushOnceLocked(ctx, pollCtx context.Context) error {
	if err := c.syncDLQLocked(ctx); err != nil {
		return err
	}
	if len(c.batch.buf.recs) == 0 {
		return nil
	}
	start := time.Now()
	c.batch.writing(start)
	gen := c.batch.gen
	if c.batch.buf.dec == nil {
		c.batch.buf.dec = c.decode(c.batch.buf.recs)
	}
	if c.dl.Load() != nil {
		c.batch.buf.dec = c.parkLocked(c.batch.buf.dec)
	}
	// One span per batch, linked to every record's trace; the sink's writes
	// and the commit are its children.
	ctx, span := tracing.StartBatch(ctx, c.cfg.Topic, c.cfg.Group, c.batch.buf.recs)
	var cerr error
	defer func() { tracing.End(span, cerr) }()
	emptied := false
	f := flusher{
		strict: c.cfg.Strict,
		write: func(ctx context.Context, d *decoded) (map[int]error, int, time.Time, error) {
			return c.writeRetrying(ctx, pollCtx, d, gen)
		},
		park: c.parkWritten,
		dlq:  c.sendDLQ,
		stop: c.stopStrict,
		commit: func(ctx context.Context) error {
			if len(c.batch.buf.recs) == 0 {
				emptied = true // a rebalance took every partition of the batch meanwhile
				return nil
			}
			return tracing.Run(ctx, "commit", func(ctx context.Context) error { return c.commitLocked(ctx, c.batch.buf.recs) })
		},
	}
	var res flushResult
	res, cerr = f.flush(ctx, c.batch.buf.dec)
	if !res.committed {
		return cerr
	}
	if emptied {
		c.batch.promote()
		return nil
	}

	c.m.processed.Add(float64(res.written))
	c.m.batchSize.Observe(float64(len(c.batch.buf.recs)))
	c.m.batchSeconds.Observe(time.Since(start).Seconds())
	now := time.Now()
	for _, r := range c.batch.buf.recs {
		c.m.recordAge.Observe(now.Sub(r.Timestamp).Seconds())
	}
	last := c.batch.buf.recs[len(c.batch.buf.recs)-1]
	c.m.lastEvent.Set(float64(last.Timestamp.UnixNano()) / 1e9)
	c.log.Debug("batch done", "records", len(c.batch.buf.recs), "written", res.written, "dlq", res.dead, "seconds", time.Since(start).Seconds())

	c.batch.done()
	if err := c.aheadErr; err != nil {
		// Fatal; a failed commit beside it only means the batch is
		// consumed again.
		c.aheadErr = nil
		if cerr != nil {
			c.log.Warn("offset commit failed", "err", cerr)
		}
		return err
	}
	return cerr
}

// flusher is the order of one flush: write the batch's decoded records,
// then send every failure (undecodable, rejected by the sink, parked behind
// either) to the DLQ, then commit the batch. A step that fails ends the
// flush, so no offset is committed before its records were written or
// dead-lettered. In strict mode the first failure calls stop (which commits
// what precedes it) instead of the DLQ. The steps are the Consumer's I/O.
type flusher struct {
	strict bool
	// write writes d until the sink accepts it or rejects records for
	// good: those by index into d.good, with the attempts made and the
	// time of the first failure.
	write func(ctx context.Context, d *decoded) (rejected map[int]error, attempts int, firstFail time.Time, err error)
	// park lists the written records of orders that had a record
	// rejected before them in d.
	park func(d *decoded, rejected map[int]error) []failure
	// dlq sends bad to the DLQ and returns once the broker acked them.
	dlq func(ctx context.Context, bad []failure) error
	// stop ends a strict run at the first of bad; writtenGood is the
	// number of d.good already written (0: none).
	stop func(ctx context.Context, bad []failure, writtenGood int) error
	// commit commits the batch's offsets.
	commit func(ctx context.Context) error
}

// flushResult says how far a flush went.
type flushResult struct {
	committed bool // the commit step ran: the flush's error, if any, is its error
	written   int  // records the sink accepted
	dead      int  // records sent to the DLQ
}

// flush runs the steps on d. Errors: write's (nothing sent or committed),
// stop's, dlq's (nothing committed), commit's (res.committed is true).
func (f flusher) flush(ctx context.Context, d *decoded) (flushResult, error) {
	bad := d.bad
	if f.strict && len(bad) > 0 {
		return flushResult{}, f.stop(ctx, bad, 0)
	}
	rejected, attempts, firstFail, err := f.write(ctx, d)
	if err != nil {
		return flushResult{}, err
	}
	for i, reason := range rejected {
		r := d.idx[i]
		bad = append(bad, failure{rec: r, reason: reason, kind: KindRejected, eventID: d.good[i].Event.EventID.String(), attempts: attempts, firstFail: firstFail})
	}
	if f.strict && len(rejected) > 0 {
		return flushResult{}, f.stop(ctx, bad, len(d.good))
	}
	if len(rejected) > 0 {
		bad = append(bad, f.park(d, rejected)...)
	}
	if len(bad) > 0 {
		if err := f.dlq(ctx, bad); err != nil {
			return flushResult{}, err
		}
	}
	res := flushResult{committed: true, written: len(d.good) - len(rejected), dead: len(bad)}
	return res, f.commit(ctx)
}

// decoded is a batch ready to write: the records whose envelope decoded
// (good, from idx), those that did not (bad), and the sink's prepared write
// of good (nil unless the sink is a Preparer).
type decoded struct {
	n    int // records of the batch it was made from
	good []Record
	idx  []*kgo.Record
	bad  []failure
	prep Prepared
}

// decode parses every record's envelope (strictly: unknown fields, a
// missing id, type or version make it poison), upcasts it to the version the
// sink reads (parseEvent) and prepares the sink's write. The payload is
// decoded by the sink, which rejects a bad one. The write
// side validated every event against its JSON Schema before it entered the
// outbox, so the runtime does not pay for schema validation again. Large
// batches are parsed on GOMAXPROCS goroutines.
func (c *Consumer) decode(recs []*kgo.Record) *decoded {
	envs := make([]schemas.Envelope, len(recs))
	errs := make([]error, len(recs))
	parallel.Chunks(len(recs), parallelDecodeMin, func(lo, hi int) {
		for i := lo; i < hi; i++ {
			envs[i], errs[i] = parseEvent(c.up, recs[i].Key, recs[i].Value)
		}
	})
	d := &decoded{n: len(recs), good: make([]Record, 0, len(recs)), idx: make([]*kgo.Record, 0, len(recs))}
	now := time.Now().UTC()
	for i, r := range recs {
		if e, ok := c.dead.lookup(r); ok && c.cfg.SkipDeadLettered {
			if c.dead.skip(e) {
				c.log.Warn("skipping a record the daemons dead-lettered", "partition", r.Partition, "offset", r.Offset,
					"event_id", e.EventID, "dlq_group", e.Group, "dlq_kind", e.Kind, "reason", e.Error)
			}
			continue
		}
		if errs[i] != nil {
			d.bad = append(d.bad, failure{rec: r, reason: errs[i], kind: KindDecode, eventID: headerEventID(r, envs[i]), attempts: 1, firstFail: now})
			continue
		}
		d.good = append(d.good, Record{Topic: r.Topic, Partition: r.Partition, Offset: r.Offset, Key: r.Key, Timestamp: r.Timestamp, Event: envs[i]})
		d.idx = append(d.idx, r)
	}
	if p, ok := c.sink.(Preparer); ok && len(d.good) > 0 {
		d.prep = p.Prepare(d.good)
	}
	return d
}

// parseEvent parses a record value's envelope and upcasts it with up to the
// version sinks read (schemas.CurrentVersion); the record itself is not
// changed. An event newer than up reads fails wrapping
// schemas.ErrNewerVersion: dead-lettered as KindDecode (the order parked
// behind it), or, in strict mode, the stop of the run at its offset. A
// record whose key is not the event's aggregate_id (the wire contract:
// key = order id) fails wrapping schemas.ErrInvalidEvent: parking and
// partitioning go by the key, so such a record would bypass its order's
// parking and ordering. On an error the envelope is returned as parsed,
// so its event id can be named.
func parseEvent(up *schemas.Upcasters, key, value []byte) (schemas.Envelope, error) {
	e, err := schemas.ParseEnvelope(value)
	if err != nil {
		return e, err
	}
	if string(key) != e.AggregateID {
		const most = 128 // the contract's longest aggregate id: both are quoted at most that long
		id := e.AggregateID[:min(len(e.AggregateID), most)]
		return e, fmt.Errorf("%w: record key %q is not the event's aggregate_id %q", schemas.ErrInvalidEvent, key[:min(len(key), most)], id)
	}
	return up.Upcast(e)
}

// parallelDecodeMin is the batch size from which envelopes are parsed on
// several goroutines.
const parallelDecodeMin = 512

// write makes one attempt to write d.
func (c *Consumer) write(ctx context.Context, d *decoded) error {
	if d.prep != nil {
		return d.prep.Write(ctx)
	}
	return c.sink.Write(ctx, d.good)
}

// writeReadingAhead makes one attempt to write d in a goroutine and reads
// ahead (readAhead) until it returns.
func (c *Consumer) writeReadingAhead(ctx, pollCtx context.Context, d *decoded) error {
	aheadCtx, stop := context.WithCancel(pollCtx)
	defer stop()
	done := make(chan error, 1)
	go func() {
		err := c.write(ctx, d)
		stop()
		done <- err
	}()
	c.readAhead(aheadCtx)
	return <-done
}

// readAhead polls the records that follow the batch being written into
// c.batch.ahead, up to one batch (BatchMaxRecords, BatchMaxBytes), until ctx ends;
// once it holds a whole batch, that batch is decoded and prepared. It never
// allows a rebalance: the group callbacks wait until the flush is over, as
// for any batch. Once rebalances were allowed in the flush (between write
// attempts) it reads nothing ahead: a rebalance may have begun, its
// callback waiting for c.mu, and a poll would wait for the rebalance. A
// fatal fetch error is kept in c.aheadErr for the flush to return after
// its commit. c.mu is held.
func (c *Consumer) readAhead(ctx context.Context) {
	for ctx.Err() == nil && c.aheadErr == nil {
		if c.mayRebalance {
			<-ctx.Done()
			return
		}
		room := c.batch.aheadRoom()
		if room == 0 {
			if c.batch.ahead.dec == nil {
				c.batch.ahead.dec = c.decode(c.batch.ahead.recs)
			}
			<-ctx.Done()
			return
		}
		fs := c.cl.PollRecords(ctx, min(c.cfg.MaxPollRecords, room))
		c.mayRebalance = len(fs) == 0
		if err := c.absorb(fs); err != nil {
			c.aheadErr = err
			return
		}
		for _, r := range fs.Records() {
			if c.owned(r.Partition) {
				c.batch.readAhead(r)
			}
		}
	}
}

// headerEventID is the event id from the envelope if it decoded, else from
// the CloudEvents ce_id header.
func headerEventID(r *kgo.Record, env schemas.Envelope) string {
	if env.EventID != uuid.Nil {
		return env.EventID.String()
	}
	for _, h := range r.Headers {
		if h.Key == schemas.HeaderID {
			return string(h.Value)
		}
	}
	return ""
}

// writeRetrying writes d until the sink returns nil or a *RejectedError,
// waiting with exponential backoff between attempts; the first attempt reads
// ahead when pollCtx is not nil. It returns the rejected records by index
// into d.good, the number of attempts made and the time of the first failure
// (zero if none).
func (c *Consumer) writeRetrying(ctx, pollCtx context.Context, d *decoded, gen uint64) (map[int]error, int, time.Time, error) {
	good := d.good
	if len(good) == 0 {
		return nil, 0, time.Time{}, nil
	}
	bo := c.newBackoff()
	var firstFail time.Time
	var paused map[string][]int32
	defer func() {
		if paused != nil {
			c.cl.ResumeFetchPartitions(paused)
		}
	}()
	for attempt := 1; ; attempt++ {
		var err error
		if attempt == 1 && pollCtx != nil {
			err = c.writeReadingAhead(ctx, pollCtx, d)
		} else {
			err = c.write(ctx, d)
		}
		var rej *RejectedError
		switch {
		case err == nil:
			return nil, attempt, firstFail, nil
		case errors.As(err, &rej):
			if firstFail.IsZero() {
				firstFail = time.Now().UTC()
			}
			for i := range rej.Rejected {
				if i < 0 || i >= len(good) {
					return nil, attempt, firstFail, fmt.Errorf("sink rejected record #%d of a batch of %d: index out of range (sink bug)", i, len(good))
				}
			}
			return rej.Rejected, attempt, firstFail, nil
		}
		if firstFail.IsZero() {
			firstFail = time.Now().UTC()
		}
		if paused == nil {
			paused = partitionsOf(c.cfg.Topic, good)
			c.cl.PauseFetchPartitions(paused)
		}
		wait := bo.NextBackOff()
		c.m.retries.Inc()
		c.log.Warn("sink write failed; retrying", "records", len(good), "attempt", attempt, "retry_in", wait.String(),
			"first_offset", good[0].Offset, "partition", good[0].Partition, "err", err)
		if err := c.sleepUnlocked(ctx, wait); err != nil {
			return nil, attempt, firstFail, fmt.Errorf("write batch of %d records (%d attempts, failing since %s): %w", len(good), attempt, firstFail.Format(time.RFC3339), err)
		}
		if c.batch.gen != gen {
			return nil, attempt, firstFail, errBatchChanged
		}
	}
}

// newBackoff is the retry policy: exponential from RetryInitial, factor 2,
// jitter ±50%, capped at RetryMax, never giving up by itself.
func (c *Consumer) newBackoff() *backoff.ExponentialBackOff {
	return retry.Exponential(c.cfg.RetryInitial, c.cfg.RetryMax)
}

// sleepUnlocked waits d (or until ctx ends) with c.mu released and
// rebalances allowed, so that group callbacks can run meanwhile.
func (c *Consumer) sleepUnlocked(ctx context.Context, d time.Duration) error {
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		c.mayRebalance = true
	}()
	c.cl.AllowRebalance()
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func partitionsOf(topic string, recs []Record) map[string][]int32 {
	var ps []int32
	for _, r := range recs {
		if !slices.Contains(ps, r.Partition) {
			ps = append(ps, r.Partition)
		}
	}
	return map[string][]int32{topic: ps}
}

// stopStrict commits, per partition, everything below its first failure
// (those records were written, or, for a decode failure, are written now)
// and returns a *StrictError for the failure with the lowest offset.
// writtenGood is the number of good records already written (0 if none).
func (c *Consumer) stopStrict(ctx context.Context, bad []failure, writtenGood int) error {
	before := beforeFailures(c.batch.buf.recs, bad)
	if writtenGood == 0 && len(before) > 0 {
		if _, _, _, err := c.writeRetrying(ctx, nil, c.decode(before), c.batch.gen); err != nil {
			return err
		}
	}
	cerr := c.commitLocked(ctx, before)
	worst := bad[0]
	for _, f := range bad[1:] {
		if f.rec.Partition < worst.rec.Partition || (f.rec.Partition == worst.rec.Partition && f.rec.Offset < worst.rec.Offset) {
			worst = f
		}
	}
	serr := &StrictError{Topic: worst.rec.Topic, Partition: worst.rec.Partition, Offset: worst.rec.Offset, EventID: worst.eventID, Reason: worst.reason}
	if e, ok := c.dead.lookup(worst.rec); ok {
		serr.DeadLetteredBy = e.Group
	}
	if cerr != nil {
		return errors.Join(serr, cerr)
	}
	return serr
}

// CommitError reports an offset commit that failed after the batch was
// written. Nothing is lost: the records are consumed again (and written
// again, idempotently) unless a later commit of the partition succeeds.
type CommitError struct {
	Records int
	Err     error
}

func (e *CommitError) Error() string {
	return fmt.Sprintf("commit offsets of a written batch of %d records (it will be consumed again unless a later commit succeeds): %v", e.Records, e.Err)
}

func (e *CommitError) Unwrap() error { return e.Err }

// commitLocked commits, per partition, the offset after the last of recs.
func (c *Consumer) commitLocked(ctx context.Context, recs []*kgo.Record) error {
	if len(recs) == 0 {
		return nil
	}
	last := lastPerPartition(recs)
	rs := make([]*kgo.Record, 0, len(last))
	for _, r := range last {
		rs = append(rs, r)
	}
	if err := c.cl.CommitRecords(ctx, rs...); err != nil {
		c.m.commitFailures.Inc()
		c.uncommittedLocked(rs)
		return &CommitError{Records: len(recs), Err: err}
	}
	c.committedLocked(rs)
	return nil
}
