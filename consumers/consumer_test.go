package consumers

import (
	"context"
	"testing"
	"time"
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
	stop, _ := start(t, c)
	eventually(t, 15*time.Second, "all records committed", func() bool {
		return sum(committed(t, brokers, cfg.Group, topic)) == int64(len(ids))
	})
	if err := stop(); err != nil {
		t.Fatalf("Run: %v", err)
	}
	if got := rec.distinct(); got != len(ids) {
		t.Fatalf("distinct events written = %d, want %d", got, len(ids))
	}
	for _, n := range rec.batches {
		if n > cfg.BatchMaxRecords {
			t.Errorf("batch of %d records exceeds BatchMaxRecords %d", n, cfg.BatchMaxRecords)
		}
	}
	for p, offs := range rec.order {
		for i := 1; i < len(offs); i++ {
			if offs[i] <= offs[i-1] {
				t.Fatalf("partition %d: offset %d written after %d", p, offs[i], offs[i-1])
			}
		}
	}
}
