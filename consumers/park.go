package consumers

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// Screener is implemented by a Prepared batch that knows, before writing,
// which of its records it will reject (a payload that does not decode, a
// value out of range). The runtime then takes them, and the later records
// of their orders, out of the batch before the write, so that no event of
// an order is applied after an earlier one was dead-lettered. A rejection
// found only during the write (by the read model's server) cannot be
// screened: the later events of that order in the same batch were written
// already; they are parked all the same, and a re-drive applies them again,
// in order, after the dead letter.
type Screener interface {
	// Rejected returns the records the write will reject, by index in the
	// prepared batch, with the reason for each. It must not block.
	Rejected() map[int]error
}

// parkLocked takes out of d what must not be written now: records the
// prepared batch screens as rejected (kind rejected), the records of an
// order that has a dead letter before them, in this batch or earlier and not
// re-driven yet (kind parked), and records that are such a dead letter
// already (a redelivery after a crash: left out, committed with the batch).
// Records of a parked order from before its dead letter (a redelivery) are
// written again, as any redelivery. It returns d itself when nothing changes,
// else a new decoded batch, prepared again. c.mu is held.
func (c *Consumer) parkLocked(d *decoded) *decoded {
	var pre map[int]error
	if s, ok := d.prep.(Screener); ok {
		pre = s.Rejected()
	}
	heads := map[string]int64{} // order → offset of its first dead letter in d
	head := func(r *kgo.Record) {
		if k := string(r.Key); k != "" {
			if o, ok := heads[k]; !ok || r.Offset < o {
				heads[k] = r.Offset
			}
		}
	}
	for _, f := range d.bad {
		head(f.rec)
	}
	for i := range pre {
		head(d.idx[i])
	}
	dl := c.dl.Load()
	var anyParked bool
	dl.with(func(st *DLQState) { anyParked = st.AnyParked() })
	if len(heads) == 0 && !anyParked {
		return d
	}
	now := time.Now().UTC()
	nd := &decoded{n: d.n, bad: slices.Clone(d.bad)}
	dup := false
	dl.with(func(st *DLQState) {
		for i, rec := range d.good {
			r := d.idx[i]
			k := string(r.Key)
			parked, again := st.Parked(c.cfg.Group, k, r.Offset)
			if again {
				dup = true
				continue // dead-lettered already, before a redelivery
			}
			if reason, ok := pre[i]; ok {
				nd.bad = append(nd.bad, failure{rec: r, reason: reason, kind: KindRejected, eventID: rec.Event.EventID.String(), attempts: 1, firstFail: now})
				continue
			}
			if o, ok := heads[k]; (ok && o < r.Offset) || parked {
				nd.bad = append(nd.bad, c.parked(r, rec.Event.EventID.String(), now))
				continue
			}
			nd.good = append(nd.good, rec)
			nd.idx = append(nd.idx, r)
		}
	})
	if len(nd.bad) == len(d.bad) && !dup {
		return d
	}
	if p, ok := c.sink.(Preparer); ok && len(nd.good) > 0 {
		nd.prep = p.Prepare(nd.good)
	}
	return nd
}

// parked is the DLQ failure of r held behind an earlier dead letter of its
// order.
func (c *Consumer) parked(r *kgo.Record, eventID string, now time.Time) failure {
	return failure{rec: r, kind: KindParked, eventID: eventID, firstFail: now,
		reason: fmt.Errorf("parked behind an earlier dead letter of order %s: applied when that one is re-driven", r.Key)}
}

// parkWritten returns, as parked failures, the records of d.good
// written in the same batch after a record of their order the sink
// rejected during the write (rejected: by index into d.good).
func (c *Consumer) parkWritten(d *decoded, rejected map[int]error) []failure {
	heads := map[string]int64{}
	for i := range rejected {
		r := d.idx[i]
		if k := string(r.Key); k != "" {
			if o, ok := heads[k]; !ok || r.Offset < o {
				heads[k] = r.Offset
			}
		}
	}
	var out []failure
	now := time.Now().UTC()
	for i, rec := range d.good {
		r := d.idx[i]
		if _, rej := rejected[i]; rej {
			continue
		}
		if o, ok := heads[string(r.Key)]; ok && o < r.Offset {
			out = append(out, c.parked(r, rec.Event.EventID.String(), now))
		}
	}
	return out
}

// syncDLQLocked waits, when the assignment changed since the last sync,
// until the DLQ state holds every dead letter written before: a partition
// taken over from another member may have parked orders. Listing failures
// are retried with backoff until ctx ends. c.mu is held (released between
// attempts).
func (c *Consumer) syncDLQLocked(ctx context.Context) error {
	dl := c.dl.Load()
	if dl == nil || !c.dlSync.Load() {
		return nil
	}
	bo := c.newBackoff()
	for attempt := 1; ; attempt++ {
		c.dlSync.Store(false)
		err := dl.catchUp(ctx)
		if err == nil {
			return nil
		}
		c.dlSync.Store(true)
		if ctx.Err() != nil {
			return err
		}
		wait := bo.NextBackOff()
		c.m.retries.Inc()
		c.log.Warn("reading the dlq failed; retrying", "dlq_topic", c.cfg.DLQTopic, "attempt", attempt, "retry_in", wait.String(), "err", err)
		if err := c.sleepUnlocked(ctx, wait); err != nil {
			return fmt.Errorf("read dlq %s: %w", c.cfg.DLQTopic, err)
		}
	}
}

// recPos is a record's position in its topic.
type recPos struct {
	topic  string
	part   int32
	offset int64
}

// deadLettered are the records a strict run finds dead-lettered (and not
// re-driven) by a group of its projection: skipped with SkipDeadLettered,
// named in the *StrictError otherwise.
type deadLettered struct {
	at map[recPos]DLQEntry

	mu      sync.Mutex
	skipped map[recPos]DLQEntry
}

// loadDeadLettered reads the DLQ for a strict run.
func (c *Consumer) loadDeadLettered(ctx context.Context) error {
	st, err := ReadDLQState(ctx, c.cfg.Brokers, c.cfg.DLQTopic, "", true, c.dlqOpts...)
	if err != nil {
		return fmt.Errorf("strict mode: read the dead letters of %s: %w", c.cfg.DLQTopic, err)
	}
	dl := &deadLettered{at: map[recPos]DLQEntry{}, skipped: map[recPos]DLQEntry{}}
	for _, po := range st.Pending("") {
		for _, r := range po.Records {
			e, err := ParseDLQ(r)
			if err != nil || e.Projection != c.cfg.Projection || e.SourceTopic != c.cfg.Topic {
				continue
			}
			dl.at[recPos{e.SourceTopic, e.SourcePartition, e.SourceOffset}] = e
		}
	}
	c.dead = dl
	return nil
}

// lookup returns the dead letter of r, if any.
func (d *deadLettered) lookup(r *kgo.Record) (DLQEntry, bool) {
	if d == nil {
		return DLQEntry{}, false
	}
	e, ok := d.at[recPos{r.Topic, r.Partition, r.Offset}]
	return e, ok
}

// skip records that e was skipped.
func (d *deadLettered) skip(e DLQEntry) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	k := recPos{e.SourceTopic, e.SourcePartition, e.SourceOffset}
	if _, ok := d.skipped[k]; ok {
		return false
	}
	d.skipped[k] = e
	return true
}

// Skipped returns the records a strict run with SkipDeadLettered skipped
// because a daemon of the same projection had dead-lettered them (and they
// were not re-driven), by source partition and offset. Safe for concurrent
// use.
func (c *Consumer) Skipped() []DLQEntry {
	if c.dead == nil {
		return nil
	}
	c.dead.mu.Lock()
	defer c.dead.mu.Unlock()
	out := make([]DLQEntry, 0, len(c.dead.skipped))
	for _, e := range c.dead.skipped {
		out = append(out, e)
	}
	slices.SortFunc(out, func(a, b DLQEntry) int {
		return cmp.Or(cmp.Compare(a.SourcePartition, b.SourcePartition), cmp.Compare(a.SourceOffset, b.SourceOffset))
	})
	return out
}
