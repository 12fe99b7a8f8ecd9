package consumers

import (
	"context"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// preparingSink is a Preparer whose prepared writes wait (up to a second)
// for the next batch to be prepared, recording whether it was.
type preparingSink struct {
	rec       *recorder
	preparing atomic.Int32 // Prepare calls in progress
	mu        sync.Mutex
	prepared  int // Prepare calls so far
	overlaps  int // writes during which the next batch was prepared
	writes    int
	plainUsed atomic.Bool // Sink.Write called instead of a prepared write
	t         *testing.T
}

func (s *preparingSink) Write(context.Context, []Record) error {
	s.plainUsed.Store(true)
	return nil
}

func (s *preparingSink) Prepare(batch []Record) Prepared {
	if s.preparing.Add(1) != 1 {
		s.t.Error("Prepare called concurrently with another Prepare")
	}
	defer s.preparing.Add(-1)
	s.mu.Lock()
	s.prepared++
	n := s.prepared
	s.mu.Unlock()
	return preparedWrite{s: s, batch: append([]Record(nil), batch...), seq: n}
}

type preparedWrite struct {
	s     *preparingSink
	batch []Record
	seq   int
}

func (w preparedWrite) Write(ctx context.Context) error {
	deadline := time.Now().Add(time.Second)
	overlapped := false
	for time.Now().Before(deadline) && ctx.Err() == nil {
		w.s.mu.Lock()
		overlapped = w.s.prepared > w.seq
		w.s.mu.Unlock()
		if overlapped {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	w.s.mu.Lock()
	w.s.writes++
	if overlapped {
		w.s.overlaps++
	}
	w.s.mu.Unlock()
	w.s.rec.record(w.batch)
	return nil
}

// TestPreparerOverlapsNextBatchWithWrite checks the pipelining: while a
// batch is written, the next one is polled and prepared; every record is
// written once, in offset order per partition, and only through prepared
// writes.
func TestPreparerOverlapsNextBatchWithWrite(t *testing.T) {
	t.Parallel()
	const topic = "orders"
	brokers := newFake(t, topic, 3)
	ids := produce(t, brokers, topic, 1000)
	sink := &preparingSink{rec: newRecorder(), t: t}
	cfg := testConfig(brokers, topic)
	c, err := New(cfg, sink, WithLogger(testLogger(t)), fastGroup())
	if err != nil {
		t.Fatal(err)
	}
	runUntilCommitted(t, c, brokers, topic, len(ids), 60*time.Second)
	if sink.plainUsed.Load() {
		t.Error("Sink.Write was called for a Preparer")
	}
	if d, n := sink.rec.distinct(), sink.rec.total(); d != len(ids) || n != len(ids) {
		t.Fatalf("written %d records, %d distinct; want each of %d once", n, d, len(ids))
	}
	sink.rec.checkOrdered(t)
	sink.mu.Lock()
	defer sink.mu.Unlock()
	// 1000 records in batches of 100: every write but the last can overlap
	// the next batch's preparation; ask for most of them.
	if sink.writes < 10 || sink.overlaps < sink.writes/2 {
		t.Errorf("%d of %d writes overlapped the next batch's preparation; want at least half", sink.overlaps, sink.writes)
	}
}

// TestPromoteKeepsOrderAndBounds checks how records read ahead become the
// next batch: in order, within the batch bounds, keeping their prepared
// form only when it covers exactly the promoted records, and never over a
// batch that is not empty.
func TestPromoteKeepsOrderAndBounds(t *testing.T) {
	t.Parallel()
	cfg := testConfig([]string{"127.0.0.1:1"}, "orders")
	cfg.BatchMaxRecords = 3
	c, err := New(cfg, &fakeSink{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	recs := make([]*kgo.Record, 5)
	for i := range recs {
		recs[i] = &kgo.Record{Topic: "orders", Partition: int32(i % 2), Offset: int64(i), Value: []byte("x")}
	}
	offsets := func(p pending) (out []int64) {
		for _, r := range p.recs {
			out = append(out, r.Offset)
		}
		return out
	}

	for _, r := range recs {
		c.batch.ahead.add(r)
	}
	c.batch.ahead.dec = &decoded{n: 5}
	c.batch.promote()
	if got := offsets(c.batch.buf); !slices.Equal(got, []int64{0, 1, 2}) {
		t.Fatalf("batch = %v, want the first 3 records", got)
	}
	if got := offsets(c.batch.ahead); !slices.Equal(got, []int64{3, 4}) {
		t.Fatalf("ahead = %v, want the rest in order", got)
	}
	if c.batch.buf.dec != nil || c.batch.buf.bytes != 3 || c.batch.ahead.bytes != 2 {
		t.Fatalf("batch dec %v bytes %d, ahead bytes %d: want no prepared form (it covered 5) and 3/2 bytes", c.batch.buf.dec, c.batch.buf.bytes, c.batch.ahead.bytes)
	}

	c.batch.promote() // the batch is not empty: nothing moves
	if got := offsets(c.batch.buf); !slices.Equal(got, []int64{0, 1, 2}) {
		t.Fatalf("promote over a full batch changed it to %v", got)
	}

	c.batch.buf = pending{}
	prep := &decoded{n: 2}
	c.batch.ahead.dec = prep
	c.batch.promote()
	if got := offsets(c.batch.buf); !slices.Equal(got, []int64{3, 4}) || c.batch.buf.dec != prep || len(c.batch.ahead.recs) != 0 {
		t.Fatalf("batch = %v (dec kept: %v), ahead %d: want [3 4] with its prepared form and nothing ahead", got, c.batch.buf.dec == prep, len(c.batch.ahead.recs))
	}
}
