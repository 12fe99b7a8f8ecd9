package consumers

import (
	"context"
	"log/slog"
	"os"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/orderstream/orderstream/internal/testenv"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// BenchmarkConsumerNoopSink measures the runtime's own cost per event
// (poll, envelope decoding, batching, commit) with a sink that
// does nothing: b.N valid events are produced first, then the clock runs
// from Run's start until every offset is committed. Reports events/s.
func BenchmarkConsumerNoopSink(b *testing.B) {
	b.Run("kfake", func(b *testing.B) {
		brokers := newFake(b, "orders", 3)
		benchConsume(b, brokers, "orders")
	})
	b.Run("kafka", func(b *testing.B) {
		if os.Getenv(testenv.EnvKafka) == "" && !testenv.InCI() {
			b.Skip(testenv.EnvKafka + " unset")
		}
		brokers, topic := realTopic(b, 3)
		benchConsume(b, brokers, topic)
	})
}

// BenchmarkRestartGap measures, on the real Kafka, the time from the restart
// of a crashed member to the first new record it writes: dynamic members
// wait out the session timeout (the crashed member holds its partitions
// until it expires), static ones (Config.InstanceID) get them back at once.
// Reports s/restart; the figures behind DefaultSessionTimeout and the
// daemons' default instance id (README).
func BenchmarkRestartGap(b *testing.B) {
	if os.Getenv(testenv.EnvKafka) == "" && !testenv.InCI() {
		b.Skip(testenv.EnvKafka + " unset")
	}
	for _, bb := range []struct {
		name     string
		instance string
		session  time.Duration
	}{
		{"dynamic-45s", "", 45 * time.Second},
		{"dynamic-20s", "", 20 * time.Second},
		{"static-45s", "i-45", 45 * time.Second},
		{"static-20s", "i-20", 20 * time.Second},
	} {
		b.Run(bb.name, func(b *testing.B) {
			var total time.Duration
			for range b.N {
				brokers, topic := realTopic(b, 3)
				cfg := realConfig(brokers, topic)
				cfg.InstanceID, cfg.SessionTimeout = bb.instance, bb.session
				total += restartGap(b, cfg, brokers)
			}
			b.ReportMetric(total.Seconds()/float64(b.N), "s/restart")
		})
	}
}

func benchConsume(b *testing.B, brokers []string, topic string) {
	n := max(b.N, 1000)
	produceMany(b, brokers, topic, n)
	var seen atomic.Int64
	sink := &fakeSink{WriteFn: func(_ context.Context, batch []Record) error { seen.Add(int64(len(batch))); return nil }}
	cfg := Config{Brokers: brokers, Topic: topic, Group: topic + "-bench-" + strconv.Itoa(b.N), LagInterval: time.Second}
	c, err := New(cfg, sink, WithLogger(testLogger(b)))
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	start := time.Now()
	stop, _ := startBench(b, c)
	adm, closeAdm := admin(b, brokers)
	defer closeAdm()
	for seen.Load() < int64(n) || committedSum(b, adm, cfg.Group, topic) < int64(n) {
		time.Sleep(10 * time.Millisecond)
	}
	elapsed := time.Since(start)
	b.StopTimer()
	if err := stop(); err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(n)/elapsed.Seconds(), "events/s")
}

func admin(b testing.TB, brokers []string) (*kadm.Client, func()) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		b.Fatal(err)
	}
	return kadm.NewClient(cl), cl.Close
}

func committedSum(b testing.TB, adm *kadm.Client, group, topic string) int64 {
	os, err := adm.FetchOffsets(context.Background(), group)
	if err != nil {
		return 0 // group not there yet
	}
	var n int64
	for _, o := range os[topic] {
		if o.Err == nil {
			n += o.At
		}
	}
	return n
}

func startBench(b *testing.B, c *Consumer) (func() error, <-chan error) { return start(b, c) }

// produceMany writes n valid events in batches.
func produceMany(b testing.TB, brokers []string, topic string, n int) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ProducerLinger(5*time.Millisecond))
	if err != nil {
		b.Fatal(err)
	}
	defer cl.Close()
	v, _ := eventValue(b, "order-1", 1)
	ctx := context.Background()
	for i := 0; i < n; i += 5000 {
		recs := make([]*kgo.Record, 0, 5000)
		for j := i; j < min(n, i+5000); j++ {
			recs = append(recs, &kgo.Record{Topic: topic, Key: []byte("order-" + strconv.Itoa(j)), Value: v})
		}
		if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkBatchWait measures the batch wait a thin, steady flow sees, with
// the caught-up rule (the default BatchMinInterval, 100 ms, and 20 ms) and
// without it (BatchMinInterval = BatchMaxWait = 500 ms): 100 events a
// second for 2 s on kfake, a sink whose every write takes 20 ms, one
// partition. Reports the p50 and p99 of Kafka timestamp → write done per
// event (ms) and the writes a second: the knob's latency against its write
// rate, without the rest of the pipeline (README, "Where commit →
// queryable goes").
func BenchmarkBatchWait(b *testing.B) {
	for _, bb := range []struct {
		name        string
		minInterval time.Duration
	}{
		{"caught-up-100ms", DefaultBatchMinInterval},
		{"caught-up-20ms", 20 * time.Millisecond},
		{"rule-off-500ms", DefaultBatchMaxWait},
	} {
		b.Run(bb.name, func(b *testing.B) {
			var ages []time.Duration
			writes := 0
			var elapsed time.Duration
			for range b.N {
				brokers := newFake(b, "orders", 1)
				cfg := testConfig(brokers, "orders")
				cfg.BatchMaxRecords, cfg.BatchMaxWait, cfg.BatchMinInterval = DefaultBatchMaxRecords, DefaultBatchMaxWait, bb.minInterval
				var mu sync.Mutex
				var n int
				sink := &fakeSink{WriteFn: func(_ context.Context, recs []Record) error {
					time.Sleep(20 * time.Millisecond) // the read model's write
					done := time.Now()
					mu.Lock()
					defer mu.Unlock()
					writes++
					for _, r := range recs {
						ages = append(ages, done.Sub(r.Timestamp))
					}
					n += len(recs)
					return nil
				}}
				c, err := New(cfg, sink, WithLogger(slog.New(slog.DiscardHandler)), fastGroup())
				if err != nil {
					b.Fatal(err)
				}
				stop, _ := start(b, c)
				cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ProducerLinger(0))
				if err != nil {
					b.Fatal(err)
				}
				const events = 200
				began := time.Now()
				for i := range events {
					v, _ := eventValue(b, "order-"+strconv.Itoa(i), 1)
					if err := cl.ProduceSync(context.Background(), &kgo.Record{Topic: "orders", Key: []byte("o"), Value: v}).FirstErr(); err != nil {
						b.Fatal(err)
					}
					time.Sleep(10 * time.Millisecond) // 100 events/s
				}
				cl.Close()
				deadline := time.Now().Add(10 * time.Second)
				for {
					mu.Lock()
					got := n
					mu.Unlock()
					if got >= events || time.Now().After(deadline) {
						break
					}
					time.Sleep(10 * time.Millisecond)
				}
				elapsed += time.Since(began)
				if err := stop(); err != nil {
					b.Fatal(err)
				}
			}
			slices.Sort(ages)
			if len(ages) == 0 {
				b.Fatal("nothing written")
			}
			q := func(p float64) float64 { return float64(ages[min(len(ages)-1, int(p*float64(len(ages))))]) / 1e6 }
			b.ReportMetric(q(0.5), "p50-ms")
			b.ReportMetric(q(0.99), "p99-ms")
			b.ReportMetric(float64(writes)/elapsed.Seconds(), "writes/s")
		})
	}
}
