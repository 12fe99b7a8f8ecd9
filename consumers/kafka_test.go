package consumers

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/orderstream/orderstream/internal/testenv"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// realTopic creates a unique topic with n partitions on the shared Kafka
// and deletes it (and its DLQ) at cleanup.
func realTopic(t testing.TB, n int32) ([]string, string) {
	t.Helper()
	brokers := testenv.KafkaBrokers(t)
	topic := strings.ReplaceAll(testenv.Name("consumers"), "_", "-")
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		t.Fatal(err)
	}
	adm := kadm.NewClient(cl)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := adm.CreateTopic(ctx, n, 1, nil, topic); err != nil {
		t.Fatalf("create topic %s: %v", topic, err)
	}
	testenv.WaitTopic(ctx, t, adm, topic, int(n))
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_, _ = adm.DeleteTopics(ctx, topic, DLQTopicFor(topic))
		cl.Close()
	})
	return brokers, topic
}

func realConfig(brokers []string, topic string) Config {
	cfg := testConfig(brokers, topic)
	cfg.Group = topic + "-g"
	return cfg
}

// Every record reaches the sink at least once across an abrupt restart (the
// client is closed mid-stream, without finishing its batch); duplicates are
// counted, none is lost.
func TestKafkaNoLossAcrossForcedRestart(t *testing.T) {
	t.Parallel()
	brokers, topic := realTopic(t, 3)
	ids := produce(t, brokers, topic, 3000)
	cfg := realConfig(brokers, topic)
	cfg.BatchMaxRecords = 200
	rec := newRecorder()
	sink := &fakeSink{WriteFn: func(_ context.Context, b []Record) error { rec.record(b); return nil }}

	// The first member's read model stores a batch and then "crashes"
	// before acknowledging it: the batch is durable but never committed.
	crashed := make(chan struct{})
	var crashOnce sync.Once
	first := &fakeSink{WriteFn: func(_ context.Context, b []Record) error {
		if rec.total() < 600 {
			time.Sleep(20 * time.Millisecond)
			rec.record(b)
			return nil
		}
		crashOnce.Do(func() { rec.record(b); close(crashed) })
		return errors.New("connection reset")
	}}
	c1, err := New(cfg, first, WithLogger(testLogger(t)))
	if err != nil {
		t.Fatal(err)
	}
	done1 := make(chan error, 1)
	go func() { done1 <- c1.Run(context.Background()) }()
	select {
	case <-crashed:
	case <-time.After(60 * time.Second):
		t.Fatal("first member made no progress")
	}
	// Crash-like stop: nothing more is written or committed.
	c1.mu.Lock()
	c1.noFlush = true
	c1.mu.Unlock()
	_ = c1.Close()
	select {
	case <-done1:
	case <-time.After(30 * time.Second):
		t.Fatal("Run did not return after Close")
	}

	c2, err := New(cfg, sink, WithLogger(testLogger(t)))
	if err != nil {
		t.Fatal(err)
	}
	stop, _ := start(t, c2)
	eventually(t, 60*time.Second, "all records committed", func() bool {
		return sum(committed(t, brokers, cfg.Group, topic)) == int64(len(ids))
	})
	if err := stop(); err != nil {
		t.Fatalf("Run: %v", err)
	}
	for _, id := range ids {
		if rec.seen[id] == 0 {
			t.Fatalf("event %s never written: lost across the restart", id)
		}
	}
	dups := rec.total() - len(ids)
	t.Logf("%d events, %d writes: %d duplicates after the forced restart", len(ids), rec.total(), dups)
	if dups == 0 {
		t.Errorf("the batch written but not committed before the crash was not consumed again")
	}
}

func TestKafkaDLQ(t *testing.T) {
	t.Parallel()
	brokers, topic := realTopic(t, 2)
	produce(t, brokers, topic, 10)
	produceRaw(t, brokers, topic, 1, "order-bad", []byte(`{"event_type":"order.paid"}`), kgo.RecordHeader{Key: "ce_id", Value: []byte("evt-bad")})
	produce(t, brokers, topic, 10)
	cfg := realConfig(brokers, topic)
	rec := newRecorder()
	c, err := New(cfg, &fakeSink{WriteFn: func(_ context.Context, b []Record) error { rec.record(b); return nil }}, WithLogger(testLogger(t)))
	if err != nil {
		t.Fatal(err)
	}
	stop, _ := start(t, c)
	eventually(t, 60*time.Second, "all 21 records committed", func() bool {
		return sum(committed(t, brokers, cfg.Group, topic)) == 21
	})
	if err := stop(); err != nil {
		t.Fatalf("Run: %v", err)
	}
	if rec.distinct() != 20 {
		t.Errorf("written %d, want 20", rec.distinct())
	}
	dlq := readAll(t, brokers, DLQTopicFor(topic), 1)
	e, err := ParseDLQ(dlq[0])
	if err != nil {
		t.Fatal(err)
	}
	if e.SourceTopic != topic || e.SourcePartition != 1 || e.Kind != "decode" || e.EventID != "evt-bad" || e.OrderID != "order-bad" {
		t.Errorf("dlq entry = %+v", e)
	}
}

// Cancelling Run (SIGTERM) while a batch is being written finishes it and
// commits it; nothing is lost and a restart writes nothing twice.
func TestKafkaShutdownMidBatchLosesNothing(t *testing.T) {
	t.Parallel()
	brokers, topic := realTopic(t, 3)
	ids := produce(t, brokers, topic, 1000)
	cfg := realConfig(brokers, topic)
	cfg.BatchMaxRecords = 100
	rec := newRecorder()
	entered := make(chan struct{})
	var once sync.Once
	slow := &fakeSink{WriteFn: func(_ context.Context, b []Record) error {
		once.Do(func() { close(entered) })
		time.Sleep(300 * time.Millisecond) // a slow read model
		rec.record(b)
		return nil
	}}
	c1, err := New(cfg, slow, WithLogger(testLogger(t)))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c1.Run(ctx) }()
	select {
	case <-entered:
	case <-time.After(60 * time.Second):
		t.Fatal("no batch written")
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run after cancel: %v", err)
	}
	firstWritten := rec.total()
	if got := sum(committed(t, brokers, cfg.Group, topic)); got != int64(firstWritten) {
		t.Fatalf("after shutdown: %d written but %d committed", firstWritten, got)
	}
	fast := &fakeSink{WriteFn: func(_ context.Context, b []Record) error { rec.record(b); return nil }}
	c2, err := New(cfg, fast, WithLogger(testLogger(t)))
	if err != nil {
		t.Fatal(err)
	}
	stop, _ := start(t, c2)
	eventually(t, 60*time.Second, "all records committed", func() bool {
		return sum(committed(t, brokers, cfg.Group, topic)) == int64(len(ids))
	})
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if rec.distinct() != len(ids) || rec.total() != len(ids) {
		t.Errorf("distinct %d, total %d, want %d each", rec.distinct(), rec.total(), len(ids))
	}
}

// A committed offset below the log start (records deleted) stops Run with an
// error naming the partition's real log start and end offsets: Kafka's
// OFFSET_OUT_OF_RANGE fetch response carries -1 for both, so they are
// listed when the error happens.
func TestKafkaOutOfRangeNamesLogBounds(t *testing.T) {
	t.Parallel()
	brokers, topic := realTopic(t, 1)
	produce(t, brokers, topic, 10)
	adm, closeAdm := admin(t, brokers)
	defer closeAdm()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	before := kadm.Offsets{}
	before.Add(kadm.Offset{Topic: topic, Partition: 0, At: 4})
	for {
		// A broker may not know a topic this new yet (UNKNOWN_TOPIC_OR_PARTITION, retriable).
		deleted, err := adm.DeleteRecords(ctx, before)
		if err == nil {
			err = deleted.Error()
		}
		if err == nil {
			break
		}
		if !kerr.IsRetriable(err) || ctx.Err() != nil {
			t.Fatalf("delete records before offset 4: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	cfg := realConfig(brokers, topic)
	commitOffset(t, brokers, cfg.Group, topic, 0, 2)
	c, err := New(cfg, &fakeSink{WriteFn: func(context.Context, []Record) error { return nil }}, WithLogger(testLogger(t)))
	if err != nil {
		t.Fatal(err)
	}
	err = c.Run(ctx)
	var oe *OffsetOutOfRangeError
	if !errors.As(err, &oe) {
		t.Fatalf("Run = %v, want *OffsetOutOfRangeError", err)
	}
	if oe.Committed != 2 || oe.LogStart != 4 || oe.LogEnd != 10 || oe.ListErr != nil {
		t.Errorf("error = %+v, want committed 2, log start 4, log end 10", oe)
	}
	if want := "committed offset 2 of group " + cfg.Group + " is out of range (log start 4, log end 10)"; !strings.Contains(err.Error(), want) {
		t.Errorf("error %q lacks %q", err, want)
	}
}
