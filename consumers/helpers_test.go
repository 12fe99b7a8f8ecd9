package consumers

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/orderstream/orderstream/schemas"
	"github.com/shopspring/decimal"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
)

// fakeSink is a Sink whose behaviour each test sets with WriteFn.
type fakeSink struct {
	WriteFn func(ctx context.Context, batch []Record) error
}

func (s *fakeSink) Write(ctx context.Context, batch []Record) error { return s.WriteFn(ctx, batch) }

// recorder remembers every record written successfully, by event id.
type recorder struct {
	mu      sync.Mutex
	seen    map[string]int // event id → times written
	batches []int          // sizes of successful batches
	order   map[int32][]int64
}

func newRecorder() *recorder {
	return &recorder{seen: map[string]int{}, order: map[int32][]int64{}}
}

func (r *recorder) record(batch []Record) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.batches = append(r.batches, len(batch))
	for _, rec := range batch {
		r.seen[rec.Event.EventID.String()]++
		r.order[rec.Partition] = append(r.order[rec.Partition], rec.Offset)
	}
}

// checkOrdered fails t unless every partition's records were written in
// increasing offset order.
func (r *recorder) checkOrdered(t testing.TB) {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	for p, offs := range r.order {
		for i := 1; i < len(offs); i++ {
			if offs[i] <= offs[i-1] {
				t.Fatalf("partition %d: offset %d written after %d", p, offs[i], offs[i-1])
			}
		}
	}
}

func (r *recorder) distinct() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.seen)
}

func (r *recorder) total() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, c := range r.seen {
		n += c
	}
	return n
}

// testLogger discards logs unless -v.
func testLogger(t testing.TB) *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) { w.t.Log(string(p)); return len(p), nil }

// newFake starts an in-process cluster with topic of n partitions.
func newFake(t testing.TB, topic string, n int32) []string {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(n, topic))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c.ListenAddrs()
}

var validator = func() *schemas.Validator {
	v, err := schemas.NewValidator()
	if err != nil {
		panic(err)
	}
	return v
}()

// eventValue returns a valid order.paid envelope of order id.
func eventValue(t testing.TB, id string, version int64) ([]byte, string) {
	t.Helper()
	env, err := schemas.NewEnvelope(id, version, time.Date(2011, 1, 2, 3, 4, 5, 0, time.UTC),
		schemas.OrderPaid{Amount: schemas.NewMoney(decimal.RequireFromString("12.50"), "GBP")}, schemas.Metadata{})
	if err != nil {
		t.Fatal(err)
	}
	b, err := validator.Marshal(env)
	if err != nil {
		t.Fatal(err)
	}
	return b, env.EventID.String()
}

// produce writes n valid events (orders "order-<i>") and returns their ids.
func produce(t testing.TB, brokers []string, topic string, n int) []string {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ids := make([]string, n)
	recs := make([]*kgo.Record, n)
	for i := range n {
		v, id := eventValue(t, "order-"+strconv.Itoa(i), 1)
		ids[i] = id
		recs[i] = &kgo.Record{Topic: topic, Key: []byte("order-" + strconv.Itoa(i)), Value: v,
			Headers: []kgo.RecordHeader{{Key: "ce_id", Value: []byte(id)}, {Key: "ce_type", Value: []byte("order.paid")}}}
	}
	if err := cl.ProduceSync(context.Background(), recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	return ids
}

// produceRaw writes one record with value v to partition p.
func produceRaw(t testing.TB, brokers []string, topic string, p int32, key string, v []byte, hs ...kgo.RecordHeader) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if err := cl.ProduceSync(context.Background(), &kgo.Record{Topic: topic, Partition: p, Key: []byte(key), Value: v, Headers: hs}).FirstErr(); err != nil {
		t.Fatal(err)
	}
}

// committed returns the group's committed offsets of topic by partition.
func committed(t testing.TB, brokers []string, group, topic string) map[int32]int64 {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	os, err := kadm.NewClient(cl).FetchOffsets(ctx, group)
	if errors.Is(err, kerr.GroupIDNotFound) || kerr.IsRetriable(err) {
		return map[int32]int64{} // no group yet, or its coordinator is still loading: nothing committed seen
	}
	if err != nil {
		t.Fatal(err)
	}
	out := map[int32]int64{}
	for p, o := range os[topic] {
		if o.Err == nil {
			out[p] = o.At
		}
	}
	return out
}

func sum(m map[int32]int64) int64 {
	var n int64
	for _, v := range m {
		n += v
	}
	return n
}

// eventually polls cond every 20ms until it holds or d passes.
func eventually(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// testConfig is a config for fast tests.
func testConfig(brokers []string, topic string) Config {
	return Config{
		Brokers:         brokers,
		Topic:           topic,
		Group:           "g-" + topic,
		BatchMaxRecords: 100,
		BatchMaxWait:    50 * time.Millisecond,
		RetryInitial:    10 * time.Millisecond,
		RetryMax:        50 * time.Millisecond,
		ShutdownTimeout: 10 * time.Second,
		LagInterval:     100 * time.Millisecond,
	}
}

// fastGroup shortens group timings on kfake.
func fastGroup() Option {
	return WithClientOpts(kgo.FetchMaxWait(100 * time.Millisecond))
}

// start runs c in the background; the returned func cancels and returns
// Run's error.
func start(t testing.TB, c *Consumer) (stop func() error, done <-chan error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	ch := make(chan error, 1)
	go func() { ch <- c.Run(ctx) }()
	var once sync.Once
	var err error
	t.Cleanup(func() { cancel(); _ = c.Close() })
	return func() error {
		once.Do(func() {
			cancel()
			select {
			case err = <-ch:
			case <-time.After(30 * time.Second):
				err = fmt.Errorf("Run did not return within 30s of cancel")
			}
		})
		return err
	}, ch
}

// runUntilCommitted runs c until the group has committed n records of
// topic (within d), then stops it and checks Run returned nil.
func runUntilCommitted(t testing.TB, c *Consumer, brokers []string, topic string, n int, d time.Duration) {
	t.Helper()
	stop, _ := start(t, c)
	eventually(t, d, "all records committed", func() bool {
		return sum(committed(t, brokers, c.cfg.Group, topic)) == int64(n)
	})
	if err := stop(); err != nil {
		t.Fatalf("Run: %v", err)
	}
}

// readAll reads n records of topic from the start.
func readAll(t testing.TB, brokers []string, topic string, n int) []*kgo.Record {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var out []*kgo.Record
	for len(out) < n {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("read %s: got %d of %d records", topic, len(out), n)
		}
		out = append(out, fs.Records()...)
	}
	return out
}

// commitOffset sets the group's committed offset of topic/p.
func commitOffset(t testing.TB, brokers []string, group, topic string, p int32, at int64) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	os := kadm.Offsets{}
	os.Add(kadm.Offset{Topic: topic, Partition: p, At: at, LeaderEpoch: -1})
	resp, err := kadm.NewClient(cl).CommitOffsets(context.Background(), group, os)
	if err == nil {
		err = resp.Error()
	}
	if err != nil {
		t.Fatal(err)
	}
}

// counterValue sums the samples of the named metric family.
func counterValue(t testing.TB, c *Consumer, name string) float64 {
	t.Helper()
	mfs, err := c.Gatherer().Gather()
	if err != nil {
		t.Fatal(err)
	}
	var v float64
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			switch {
			case m.GetCounter() != nil:
				v += m.GetCounter().GetValue()
			case m.GetGauge() != nil:
				v += m.GetGauge().GetValue()
			}
		}
	}
	return v
}
