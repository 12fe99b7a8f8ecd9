package consumers

import (
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// batch holds the records gathered for the next Sink.Write (buf) and those
// polled behind them (ahead: read while buf was written, or past its
// bounds), and applies the batch bounds of Config: BatchMaxRecords,
// BatchMaxBytes (summed record values) and BatchMaxWait. Records of one
// partition stay in offset order, buf's before ahead's.
//
// The caught-up rule (BatchMinInterval below BatchMaxWait): once a poll
// returned fewer records than it asked for — the client holds nothing more,
// the consumer has caught up with the topic — the batch is written as soon
// as BatchMinInterval has passed since the previous write started, instead
// of waiting out BatchMaxWait. A thin flow is then written within a fetch
// and a write of its commit; a heavy one still makes full batches (its polls
// come back full), and writes never start more often than every
// BatchMinInterval.
//
// A plain value: no I/O, no locks. The Consumer guards it with its mu.
type batch struct {
	maxRecords  int
	maxBytes    int
	maxWait     time.Duration
	minInterval time.Duration

	caughtUp  bool      // the last poll returned fewer records than it asked for
	lastWrite time.Time // when the last write started; zero: none yet

	buf   pending
	ahead pending
	gen   uint64 // incremented whenever drop removed records, so that a flush waiting between attempts sees it
}

// pending is a run of gathered records: of one or more partitions, each
// partition's in offset order.
type pending struct {
	recs    []*kgo.Record
	bytes   int
	started time.Time
	dec     *decoded // recs decoded and prepared; nil until then, reset when recs change
}

// add appends r.
func (p *pending) add(r *kgo.Record) {
	if len(p.recs) == 0 {
		p.started = time.Now()
	}
	p.recs = append(p.recs, r)
	p.bytes += len(r.Value)
	p.dec = nil
}

// drop removes the records of the partitions in gone.
func (p *pending) drop(gone map[int32]bool) {
	kept := p.recs[:0]
	bytes := 0
	for _, r := range p.recs {
		if !gone[r.Partition] {
			kept = append(kept, r)
			bytes += len(r.Value)
		}
	}
	if len(kept) != len(p.recs) {
		p.dec = nil
	}
	clear(p.recs[len(kept):])
	p.recs, p.bytes = kept, bytes
}

// newBatch is an empty batch with cfg's bounds (cfg has its defaults).
func newBatch(cfg Config) batch {
	return batch{maxRecords: cfg.BatchMaxRecords, maxBytes: cfg.BatchMaxBytes, maxWait: cfg.BatchMaxWait, minInterval: cfg.BatchMinInterval}
}

// adaptive reports whether the caught-up rule applies: BatchMinInterval is
// below BatchMaxWait.
func (b *batch) adaptive() bool { return b.minInterval < b.maxWait }

// polled records the outcome of a poll that asked for asked records and
// returned got: fewer means caught up.
func (b *batch) polled(got, asked int) { b.caughtUp = got < asked }

// writing records that a write of the batch starts at.
func (b *batch) writing(at time.Time) { b.lastWrite = at }

// nextWrite is the earliest start of the next write by the caught-up rule.
func (b *batch) nextWrite() time.Time { return b.lastWrite.Add(b.minInterval) }

// held is the number of records gathered, in the batch and ahead of it.
func (b *batch) held() int { return len(b.buf.recs) + len(b.ahead.recs) }

// pollSize is how many records the next poll may return: the room left in
// the batch, at most maxPoll, at least 1.
func (b *batch) pollSize(maxPoll int) int {
	return max(1, min(maxPoll, b.maxRecords-len(b.buf.recs)))
}

// deadline is when the batch is due by BatchMaxWait or, with the
// caught-up rule, when it may be written by it (BatchMinInterval after the
// last write started; it may be past): the poll waits until then at most.
// False when the batch is empty.
func (b *batch) deadline() (time.Time, bool) {
	if len(b.buf.recs) == 0 {
		return time.Time{}, false
	}
	d := b.buf.started.Add(b.maxWait)
	if next := b.nextWrite(); b.adaptive() && next.Before(d) {
		d = next
	}
	return d, true
}

// gather adds the polled recs of the partitions owned reports as assigned:
// to the batch while they fit its bounds, the rest, in order, ahead. What
// was read ahead is promoted first (a rebalance may have emptied the batch
// but not what was read ahead). A record never overtakes one held ahead.
func (b *batch) gather(recs []*kgo.Record, owned func(partition int32) bool) {
	b.promote()
	for _, r := range recs {
		if !owned(r.Partition) {
			continue // revoked since the fetch
		}
		n := len(b.buf.recs)
		if len(b.ahead.recs) > 0 || (n > 0 && (n+1 > b.maxRecords || b.buf.bytes+len(r.Value) > b.maxBytes)) {
			b.ahead.add(r)
			continue
		}
		b.buf.add(r)
	}
}

// readAhead appends r (polled while the batch is written) ahead.
func (b *batch) readAhead(r *kgo.Record) { b.ahead.add(r) }

// aheadRoom is how many more records may be read ahead: one batch's worth
// (BatchMaxRecords, BatchMaxBytes); 0 when that is reached.
func (b *batch) aheadRoom() int {
	if b.ahead.bytes >= b.maxBytes {
		return 0
	}
	return max(0, b.maxRecords-len(b.ahead.recs))
}

// due reports whether the batch must be written at now: it is not empty
// and reached BatchMaxRecords or BatchMaxBytes, waited BatchMaxWait since
// its first record, records wait behind it, or (caught-up rule) the last
// poll caught up and BatchMinInterval passed since the last write started.
func (b *batch) due(now time.Time) bool {
	n := len(b.buf.recs)
	return n > 0 && (n >= b.maxRecords || len(b.ahead.recs) > 0 ||
		b.buf.bytes >= b.maxBytes ||
		now.Sub(b.buf.started) >= b.maxWait ||
		(b.adaptive() && b.caughtUp && !now.Before(b.nextWrite())))
}

// promote moves what was read ahead into the batch when the batch is
// empty: the records that fit its bounds, with their decoded form when it
// covers exactly those. The rest stays ahead. It must not be called while
// the batch is being written.
func (b *batch) promote() {
	if len(b.buf.recs) > 0 {
		return
	}
	n, bytes := 0, 0
	for _, r := range b.ahead.recs {
		if n > 0 && (n+1 > b.maxRecords || bytes+len(r.Value) > b.maxBytes) {
			break
		}
		n++
		bytes += len(r.Value)
	}
	if n == 0 {
		return
	}
	started := b.ahead.started
	if n == len(b.ahead.recs) {
		b.buf, b.ahead = b.ahead, pending{recs: b.buf.recs[:0]}
		if b.buf.dec != nil && b.buf.dec.n != n {
			b.buf.dec = nil
		}
		return
	}
	b.buf.recs = append(b.buf.recs[:0], b.ahead.recs[:n]...)
	b.buf.bytes, b.buf.started, b.buf.dec = bytes, started, nil
	rest := b.ahead.recs[n:]
	b.ahead = pending{recs: append(make([]*kgo.Record, 0, len(rest)), rest...), started: time.Now()}
	for _, r := range rest {
		b.ahead.bytes += len(r.Value)
	}
}

// done forgets the batch after it was written (and dead-lettered and
// committed) and promotes what was read ahead.
func (b *batch) done() {
	clear(b.buf.recs)
	b.buf = pending{recs: b.buf.recs[:0]}
	b.promote()
}

// drop forgets the records of partitions ps (revoked or lost), in the batch
// and ahead.
func (b *batch) drop(ps []int32) {
	if len(ps) == 0 {
		return
	}
	gone := map[int32]bool{}
	for _, p := range ps {
		gone[p] = true
	}
	b.gen++
	b.buf.drop(gone)
	b.ahead.drop(gone)
}

// lastPerPartition is, per partition, the record of recs with the highest
// offset: committing it commits its offset + 1, everything of recs in its
// partition.
func lastPerPartition(recs []*kgo.Record) map[int32]*kgo.Record {
	last := map[int32]*kgo.Record{}
	for _, r := range recs {
		if l, ok := last[r.Partition]; !ok || r.Offset > l.Offset {
			last[r.Partition] = r
		}
	}
	return last
}

// beforeFailures is what a strict run commits when it stops: the records of
// recs below, in their partition, the first of bad (all of a partition
// without failures).
func beforeFailures(recs []*kgo.Record, bad []failure) []*kgo.Record {
	first := map[int32]int64{} // partition → offset of its first failure
	for _, f := range bad {
		if o, ok := first[f.rec.Partition]; !ok || f.rec.Offset < o {
			first[f.rec.Partition] = f.rec.Offset
		}
	}
	var before []*kgo.Record
	for _, r := range recs {
		if o, ok := first[r.Partition]; !ok || r.Offset < o {
			before = append(before, r)
		}
	}
	return before
}
