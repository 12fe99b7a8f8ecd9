package consumers

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"
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
