package consumers

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

func TestDeliversAndCommits(t *testing.T) {
	t.Parallel()
	const topic = "orders"
	brokers := newFake(t, topic, 3)
	ids := produce(t, brokers, topic, 250)
	rec := newRecorder()
	sink := &fakeSink{WriteFn: func(_ context.Context, b []Record) error { rec.record(b); return nil }}
	cfg := testConfig(brokers, topic)
	c, err := New(cfg, sink, WithLogger(testLogger(t)), fastGroup())
	if err != nil {
		t.Fatal(err)
	}
	runUntilCommitted(t, c, brokers, topic, len(ids), 15*time.Second)
	if got := rec.distinct(); got != len(ids) {
		t.Fatalf("distinct events written = %d, want %d", got, len(ids))
	}
	for _, n := range rec.batches {
		if n > cfg.BatchMaxRecords {
			t.Errorf("batch of %d records exceeds BatchMaxRecords %d", n, cfg.BatchMaxRecords)
		}
	}
	rec.checkOrdered(t)
}

func TestTransientFailuresRetriedNoCommitBefore(t *testing.T) {
	t.Parallel()
	const topic = "orders"
	brokers := newFake(t, topic, 2)
	ids := produce(t, brokers, topic, 40)
	rec := newRecorder()
	cfg := testConfig(brokers, topic)
	var calls atomic.Int64
	var committedDuringFailures atomic.Int64
	var c *Consumer
	sink := &fakeSink{WriteFn: func(_ context.Context, b []Record) error {
		if n := calls.Add(1); n <= 4 {
			committedDuringFailures.Add(sum(committed(t, brokers, cfg.Group, topic)))
			if n > 1 && len(c.cl.PauseFetchPartitions(nil)[topic]) == 0 {
				t.Errorf("attempt %d: fetching not paused while retrying", n)
			}
			return errors.New("clickhouse: connection refused")
		}
		rec.record(b)
		return nil
	}}
	c, err := New(cfg, sink, WithLogger(testLogger(t)), fastGroup())
	if err != nil {
		t.Fatal(err)
	}
	stop, _ := start(t, c)
	eventually(t, 15*time.Second, "all records committed", func() bool {
		return sum(committed(t, brokers, cfg.Group, topic)) == int64(len(ids))
	})
	// franz-go's client metrics (kprom) of the group client, with the group.
	if got := counterValue(t, c, "orderstream_consumer_kafka_fetch_records_total"); got < float64(len(ids)) {
		t.Errorf("kafka fetch_records_total = %v, want ≥ %d", got, len(ids))
	}
	if err := stop(); err != nil {
		t.Fatalf("Run: %v", err)
	}
	if n := committedDuringFailures.Load(); n != 0 {
		t.Errorf("offsets committed while the sink was failing: %d", n)
	}
	if got := rec.distinct(); got != len(ids) {
		t.Fatalf("distinct events written = %d, want %d", got, len(ids))
	}
	if got := counterValue(t, c, "orderstream_consumer_retries_total"); got != 4 {
		t.Errorf("retries_total = %v, want 4", got)
	}
}

func TestPoisonRecordGoesToDLQAndPartitionFlows(t *testing.T) {
	t.Parallel()
	const topic = "orders"
	brokers := newFake(t, topic, 1)
	produce(t, brokers, topic, 3)
	produceRaw(t, brokers, topic, 0, "order-x", []byte(`{not json`), kgo.RecordHeader{Key: "ce_id", Value: []byte("evt-poison")}, kgo.RecordHeader{Key: "ce_type", Value: []byte("order.paid")})
	produce(t, brokers, topic, 3)
	rec := newRecorder()
	cfg := testConfig(brokers, topic)
	c, err := New(cfg, &fakeSink{WriteFn: func(_ context.Context, b []Record) error { rec.record(b); return nil }}, WithLogger(testLogger(t)), fastGroup())
	if err != nil {
		t.Fatal(err)
	}
	stop, _ := start(t, c)
	eventually(t, 15*time.Second, "all 7 records committed", func() bool {
		return committed(t, brokers, cfg.Group, topic)[0] == 7
	})
	if err := stop(); err != nil {
		t.Fatalf("Run: %v", err)
	}
	if got := rec.distinct(); got != 6 {
		t.Fatalf("events written = %d, want 6 (all but the poison record)", got)
	}
	dlq := readAll(t, brokers, c.Config().DLQTopic, 1)
	e, err := ParseDLQ(dlq[0])
	if err != nil {
		t.Fatal(err)
	}
	if e.SourceTopic != topic || e.SourcePartition != 0 || e.SourceOffset != 3 || e.Kind != "decode" ||
		e.EventID != "evt-poison" || e.EventType != "order.paid" || e.OrderID != "order-x" || e.Attempts != 1 ||
		e.FirstFailure.IsZero() || !strings.Contains(e.Error, "decode event envelope") {
		t.Errorf("dlq entry = %+v", e)
	}
	if string(dlq[0].Value) != `{not json` {
		t.Errorf("dlq value = %q, want the original", dlq[0].Value)
	}
}

func TestSinkRejectionGoesToDLQ(t *testing.T) {
	t.Parallel()
	const topic = "orders"
	brokers := newFake(t, topic, 1)
	ids := produce(t, brokers, topic, 5)
	cfg := testConfig(brokers, topic)
	var rejectedOnce atomic.Bool
	rec := newRecorder()
	sink := &fakeSink{WriteFn: func(_ context.Context, b []Record) error {
		var ok []Record
		rej := map[int]error{}
		for i, r := range b {
			if r.Event.EventID.String() == ids[2] {
				rej[i] = errors.New("currency XXX unknown")
				continue
			}
			ok = append(ok, r)
		}
		rec.record(ok)
		if len(rej) > 0 {
			rejectedOnce.Store(true)
			return &RejectedError{Rejected: rej}
		}
		return nil
	}}
	c, err := New(cfg, sink, WithLogger(testLogger(t)), fastGroup())
	if err != nil {
		t.Fatal(err)
	}
	stop, _ := start(t, c)
	eventually(t, 15*time.Second, "all records committed", func() bool {
		return committed(t, brokers, cfg.Group, topic)[0] == 5
	})
	if err := stop(); err != nil {
		t.Fatalf("Run: %v", err)
	}
	dlq := readAll(t, brokers, c.Config().DLQTopic, 1)
	e, err := ParseDLQ(dlq[0])
	if err != nil {
		t.Fatal(err)
	}
	if e.Kind != "rejected" || e.SourceOffset != 2 || e.EventID != ids[2] || e.Error != "currency XXX unknown" || e.Attempts != 1 {
		t.Errorf("dlq entry = %+v", e)
	}
	if got := counterValue(t, c, "orderstream_consumer_dlq_records_total"); got != 1 {
		t.Errorf("dlq_records_total = %v, want 1", got)
	}
}

func TestStrictStopsAtPoisonWithOffset(t *testing.T) {
	t.Parallel()
	const topic = "orders"
	brokers := newFake(t, topic, 1)
	produce(t, brokers, topic, 4)
	produceRaw(t, brokers, topic, 0, "order-x", []byte(`{"event_type":""}`))
	produce(t, brokers, topic, 4)
	cfg := testConfig(brokers, topic)
	cfg.Strict = true
	rec := newRecorder()
	c, err := New(cfg, &fakeSink{WriteFn: func(_ context.Context, b []Record) error { rec.record(b); return nil }}, WithLogger(testLogger(t)), fastGroup())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	err = c.Run(ctx)
	var se *StrictError
	if !errors.As(err, &se) {
		t.Fatalf("Run = %v, want *StrictError", err)
	}
	if se.Topic != topic || se.Partition != 0 || se.Offset != 4 || !strings.Contains(err.Error(), "partition 0 offset 4") {
		t.Errorf("strict error = %v", err)
	}
	if got := committed(t, brokers, cfg.Group, topic)[0]; got != 4 {
		t.Errorf("committed = %d, want 4 (everything before the poison record)", got)
	}
	if got := rec.distinct(); got != 4 {
		t.Errorf("written = %d, want 4", got)
	}
}

func TestRestartResumesFromCommitted(t *testing.T) {
	t.Parallel()
	const topic = "orders"
	brokers := newFake(t, topic, 3)
	ids := produce(t, brokers, topic, 300)
	cfg := testConfig(brokers, topic)
	cfg.BatchMaxRecords = 20
	rec := newRecorder()
	var stopFirst atomic.Bool
	sink := &fakeSink{WriteFn: func(_ context.Context, b []Record) error { rec.record(b); return nil }}
	c1, err := New(cfg, sink, WithLogger(testLogger(t)), fastGroup())
	if err != nil {
		t.Fatal(err)
	}
	stop1, _ := start(t, c1)
	eventually(t, 15*time.Second, "some progress", func() bool { return rec.total() >= 60 })
	stopFirst.Store(true)
	if err := stop1(); err != nil {
		t.Fatalf("first Run: %v", err)
	}
	firstCommitted := sum(committed(t, brokers, cfg.Group, topic))
	firstWritten := rec.total()

	c2, err := New(cfg, sink, WithLogger(testLogger(t)), fastGroup())
	if err != nil {
		t.Fatal(err)
	}
	stop2, _ := start(t, c2)
	eventually(t, 15*time.Second, "all records committed", func() bool {
		return sum(committed(t, brokers, cfg.Group, topic)) == int64(len(ids))
	})
	if err := stop2(); err != nil {
		t.Fatalf("second Run: %v", err)
	}
	if got := rec.distinct(); got != len(ids) {
		t.Fatalf("distinct written = %d, want %d", got, len(ids))
	}
	dups := rec.total() - len(ids)
	t.Logf("first run wrote %d and committed %d; duplicates after restart: %d", firstWritten, firstCommitted, dups)
	if int64(firstWritten) != firstCommitted {
		t.Errorf("graceful stop: written %d but committed %d", firstWritten, firstCommitted)
	}
	if dups != 0 {
		t.Errorf("duplicates after a graceful restart = %d, want 0", dups)
	}
}

func TestGracefulShutdownFinishesInFlightBatch(t *testing.T) {
	t.Parallel()
	const topic = "orders"
	brokers := newFake(t, topic, 1)
	ids := produce(t, brokers, topic, 50)
	cfg := testConfig(brokers, topic)
	cfg.BatchMaxRecords = 1000
	cfg.BatchMaxWait = 100 * time.Millisecond
	entered := make(chan struct{})
	release := make(chan struct{})
	var once sync.Once
	rec := newRecorder()
	sink := &fakeSink{WriteFn: func(ctx context.Context, b []Record) error {
		once.Do(func() { close(entered) })
		select {
		case <-release:
		case <-ctx.Done():
			return ctx.Err()
		}
		rec.record(b)
		return nil
	}}
	c, err := New(cfg, sink, WithLogger(testLogger(t)), fastGroup())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	<-entered
	cancel() // SIGTERM while the batch is being written
	eventually(t, 5*time.Second, "health to report the consumer up while finishing", func() bool { return c.Health().Alive })
	close(release)
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("Run did not return after the in-flight batch finished")
	}
	if got := committed(t, brokers, cfg.Group, topic)[0]; got != int64(len(ids)) {
		t.Errorf("committed = %d, want %d: the in-flight batch was not finished", got, len(ids))
	}
	if rec.distinct() != len(ids) {
		t.Errorf("written %d, want %d", rec.distinct(), len(ids))
	}
}

func TestCommittedOffsetOutOfRangeStops(t *testing.T) {
	t.Parallel()
	const topic = "orders"
	brokers := newFake(t, topic, 1)
	produce(t, brokers, topic, 10)
	cfg := testConfig(brokers, topic)
	commitOffset(t, brokers, cfg.Group, topic, 0, 500)
	c, err := New(cfg, &fakeSink{WriteFn: func(context.Context, []Record) error { return nil }}, WithLogger(testLogger(t)), fastGroup())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	err = c.Run(ctx)
	var oe *OffsetOutOfRangeError
	if !errors.As(err, &oe) {
		t.Fatalf("Run = %v, want *OffsetOutOfRangeError", err)
	}
	if oe.Partition != 0 || oe.Committed != 500 || oe.LogEnd != 10 || !strings.Contains(err.Error(), "replay --mode in-place") {
		t.Errorf("error = %v (%+v)", err, oe)
	}
	if got := committed(t, brokers, cfg.Group, topic)[0]; got != 500 {
		t.Errorf("committed offset moved to %d; it must stay 500", got)
	}
}

// TestCaughtUpWritesWithoutWaiting: with the caught-up rule a consumer that
// has read everything writes at once, however long BatchMaxWait is; a
// later record is written after BatchMinInterval, not BatchMaxWait. With
// the rule off the same records wait for BatchMaxWait.
func TestCaughtUpWritesWithoutWaiting(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name        string
		minInterval time.Duration
		wantWritten bool
	}{
		{"caught-up rule", 50 * time.Millisecond, true},
		{"rule off", time.Minute, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			const topic = "orders"
			brokers := newFake(t, topic, 2)
			ids := produce(t, brokers, topic, 20)
			cfg := testConfig(brokers, topic)
			cfg.BatchMaxRecords = 1000
			cfg.BatchMaxWait = time.Minute
			cfg.BatchMinInterval = tt.minInterval
			rec := newRecorder()
			sink := &fakeSink{WriteFn: func(_ context.Context, b []Record) error { rec.record(b); return nil }}
			c, err := New(cfg, sink, WithLogger(testLogger(t)), fastGroup())
			if err != nil {
				t.Fatal(err)
			}
			start(t, c)
			if !tt.wantWritten {
				eventually(t, 15*time.Second, "every record gathered", func() bool {
					c.mu.Lock()
					defer c.mu.Unlock()
					return len(c.batch.buf.recs) == len(ids)
				})
				time.Sleep(time.Second) // a second more: still nothing written (BatchMaxWait is a minute)
				if n := rec.total(); n != 0 {
					t.Fatalf("rule off: %d records written before BatchMaxWait", n)
				}
				return
			}
			eventually(t, 15*time.Second, "every record written", func() bool { return rec.distinct() == len(ids) })
			more := produce(t, brokers, topic, 1)
			at := time.Now()
			eventually(t, 15*time.Second, "a later record written", func() bool { return rec.distinct() == len(ids)+len(more) })
			if took := time.Since(at); took > 10*time.Second {
				t.Errorf("a later record took %v to be written, want well under BatchMaxWait (1 min)", took)
			}
		})
	}
}

// TestHugePoisonRecordStopsNamingIt: a poison record so large that its DLQ
// copy (the value plus the dead-letter headers) exceeds what may be
// produced cannot be dead-lettered; retrying cannot help, so the daemon
// stops naming the record's partition, offset and size instead of retrying
// it forever with the partition stalled.
func TestHugePoisonRecordStopsNamingIt(t *testing.T) {
	t.Parallel()
	const topic = "orders"
	brokers := newFake(t, topic, 1)
	produce(t, brokers, topic, 2)
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ProducerBatchMaxBytes(4<<20))
	if err != nil {
		t.Fatal(err)
	}
	huge := bytes.Repeat([]byte("x"), 1_000_000) // not JSON
	if err := cl.ProduceSync(context.Background(), &kgo.Record{Topic: topic, Key: []byte("order-x"), Value: huge}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	cl.Close()
	c, err := New(testConfig(brokers, topic), &fakeSink{WriteFn: func(context.Context, []Record) error { return nil }}, WithLogger(testLogger(t)), fastGroup())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	err = c.Run(ctx)
	if err == nil || ctx.Err() != nil || !strings.Contains(err.Error(), "partition 0 offset 2") || !strings.Contains(err.Error(), "too large") {
		t.Fatalf("Run = %v (context %v), want a stop naming partition 0 offset 2 as too large for the DLQ", err, ctx.Err())
	}
}

// TestPoisonWithLongReasonIsDeadLettered: a decoder error that quotes the
// whole offending input (an unknown member name of 600 KB) is cut in the
// dlq_error header, so the DLQ copy stays within the size the topic takes:
// the record is dead-lettered and the partition flows, instead of a copy
// twice its size being refused.
func TestPoisonWithLongReasonIsDeadLettered(t *testing.T) {
	t.Parallel()
	const topic = "orders"
	brokers := newFake(t, topic, 1)
	produceRaw(t, brokers, topic, 0, "order-x", []byte(`{"`+strings.Repeat("a", 600_000)+`":1}`))
	produce(t, brokers, topic, 2)
	rec := newRecorder()
	c, err := New(testConfig(brokers, topic), &fakeSink{WriteFn: func(_ context.Context, b []Record) error { rec.record(b); return nil }}, WithLogger(testLogger(t)), fastGroup())
	if err != nil {
		t.Fatal(err)
	}
	runUntilCommitted(t, c, brokers, topic, 3, 15*time.Second)
	if got := rec.distinct(); got != 2 {
		t.Errorf("written = %d, want the 2 valid records", got)
	}
	e, err := ParseDLQ(readAll(t, brokers, c.Config().DLQTopic, 1)[0])
	if err != nil || e.SourceOffset != 0 || e.Kind != KindDecode || len(e.Error) > maxDLQError+32 || !strings.Contains(e.Error, "bytes)") {
		t.Fatalf("dead letter %v (error of %d bytes), %v; want the poison record with its reason cut", e.SourceOffset, len(e.Error), err)
	}
}
