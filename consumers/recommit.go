package consumers

import (
	"context"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// A written batch whose offset commit failed (the coordinator moved, the
// cluster was down, the group was rebalancing) is durable in the sink, but
// its partitions' committed offsets stay behind. When more records of a
// partition arrive, their commit covers the earlier ones; when none do (the
// end of a replay, a quiet topic) the lag would stay until a rebalance or a
// restart consumed the records again, and a rebuild would never be seen as
// caught up. So the consumer keeps the last written record of each such
// partition and commits it again, with the sink's backoff (Config.RetryInitial
// doubling up to Config.RetryMax), while it owns the partition.

// commitRetry schedules the commit of written records whose commit failed.
// The zero value has nothing pending. Guarded by Consumer.mu.
type commitRetry struct {
	at      time.Time     // when to commit again; zero: nothing pending
	backoff time.Duration // the wait after the next failure
}

// due returns when the next commit attempt is due; false when nothing is
// pending.
func (r *commitRetry) due() (time.Time, bool) { return r.at, !r.at.IsZero() }

// ready reports whether an attempt is pending and due at now.
func (r *commitRetry) ready(now time.Time) bool { return !r.at.IsZero() && !now.Before(r.at) }

// failed schedules the next attempt after a failure, doubling the wait from
// initial up to limit.
func (r *commitRetry) failed(now time.Time, initial, limit time.Duration) {
	if r.backoff == 0 {
		r.backoff = initial
	}
	r.at = now.Add(r.backoff)
	r.backoff = min(2*r.backoff, limit)
}

// reset forgets the schedule: nothing is pending.
func (r *commitRetry) reset() { *r = commitRetry{} }

// uncommittedLocked remembers rs (the last record per partition of a batch
// whose commit failed) for a later attempt. c.mu is held.
func (c *Consumer) uncommittedLocked(rs []*kgo.Record) {
	c.stateMu.Lock()
	for _, r := range rs {
		ps, ok := c.parts[r.Partition]
		if !ok {
			continue // revoked: its new owner consumes it again
		}
		if ps.uncommitted == nil || r.Offset > ps.uncommitted.Offset {
			ps.uncommitted = r
		}
	}
	c.stateMu.Unlock()
	c.retry.failed(time.Now(), c.cfg.RetryInitial, c.cfg.RetryMax)
}

// committedLocked records the successful commit of rs (the last record per
// partition of what was written): the committed offsets and lag, and the
// pending commits they cover. c.mu is held.
func (c *Consumer) committedLocked(rs []*kgo.Record) {
	c.stateMu.Lock()
	pending := false
	for _, r := range rs {
		if ps, ok := c.parts[r.Partition]; ok {
			ps.committed = max(ps.committed, r.Offset+1)
			if ps.uncommitted != nil && ps.uncommitted.Offset < ps.committed {
				ps.uncommitted = nil
			}
			c.m.setLag(r.Partition, ps)
		}
	}
	for _, ps := range c.parts {
		pending = pending || ps.uncommitted != nil
	}
	c.stateMu.Unlock()
	if !pending {
		c.retry.reset()
	}
}

// recommitLocked commits again the written records whose commit failed, of
// the partitions still owned. A failure returns a *CommitError (logged by
// the caller) and schedules the next attempt. c.mu is held.
func (c *Consumer) recommitLocked(ctx context.Context) error {
	c.stateMu.Lock()
	var rs []*kgo.Record
	records := 0 // written but not committed, as far as known
	for _, ps := range c.parts {
		if ps.uncommitted != nil {
			rs = append(rs, ps.uncommitted)
			n := int64(1) // at least the record kept
			if ps.committed >= 0 {
				n = ps.uncommitted.Offset + 1 - ps.committed
			}
			records += int(n)
		}
	}
	c.stateMu.Unlock()
	if len(rs) == 0 {
		c.retry.reset()
		return nil
	}
	if err := c.cl.CommitRecords(ctx, rs...); err != nil {
		c.m.commitFailures.Inc()
		c.retry.failed(time.Now(), c.cfg.RetryInitial, c.cfg.RetryMax)
		return &CommitError{Records: records, Err: err}
	}
	c.log.Info("offsets of written records committed on retry", "partitions", len(rs))
	c.committedLocked(rs)
	return nil
}
