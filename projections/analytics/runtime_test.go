package analytics_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/orderstream/orderstream/consumers"
	"github.com/orderstream/orderstream/internal/testenv"
	"github.com/orderstream/orderstream/internal/testfixture"
	"github.com/orderstream/orderstream/projections/analytics"
	"github.com/orderstream/orderstream/schemas"
	"github.com/shopspring/decimal"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// daemon runs a consumer-group member with sink until stop is called.
type daemon struct {
	ctx    context.Context
	cancel context.CancelFunc
	done   chan error
}

func startDaemon(t testing.TB, cfg consumers.Config, sink consumers.Sink) *daemon {
	t.Helper()
	d := newDaemon()
	d.start(t, cfg, sink)
	return d
}

func newDaemon() *daemon {
	ctx, cancel := context.WithCancel(context.Background())
	return &daemon{ctx: ctx, cancel: cancel, done: make(chan error, 1)}
}

func (d *daemon) start(t testing.TB, cfg consumers.Config, sink consumers.Sink) {
	t.Helper()
	c, err := consumers.New(cfg, sink)
	if err != nil {
		t.Fatalf("consumers.New: %v", err)
	}
	go func() { d.done <- c.Run(d.ctx) }()
	t.Cleanup(func() { _ = d.stop() })
}

// stop cancels the daemon (SIGTERM) and returns Run's error.
func (d *daemon) stop() error {
	d.cancel()
	return d.wait()
}

// wait returns Run's error once it has returned by itself (or been stopped).
func (d *daemon) wait() error {
	select {
	case err, ok := <-d.done:
		if ok {
			close(d.done)
		}
		return err
	case <-time.After(2 * time.Minute):
		return errors.New("daemon did not stop within 2 minutes")
	}
}

func consumerConfig(brokers []string, topic, group string) consumers.Config {
	return consumers.Config{Brokers: brokers, Topic: topic, Group: group, Projection: "analytics",
		BatchMaxWait: 200 * time.Millisecond, RetryInitial: 100 * time.Millisecond, RetryMax: 2 * time.Second}
}

func admin(t testing.TB, brokers []string) *kadm.Client {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return kadm.NewClient(cl)
}

// resetOffsets commits offset 0 for every partition of topic in group (the
// group must have no member).
func resetOffsets(t testing.TB, adm *kadm.Client, group, topic string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ends, err := adm.ListEndOffsets(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	var os kadm.Offsets
	ends.Each(func(o kadm.ListedOffset) { os.AddOffset(topic, o.Partition, 0, -1) })
	resp, err := adm.CommitOffsets(ctx, group, os)
	if err == nil {
		err = resp.Error()
	}
	if err != nil {
		t.Fatalf("reset offsets of %s: %v", group, err)
	}
}

func deleteTopicAtCleanup(t testing.TB, adm *kadm.Client, topic string) {
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_, _ = adm.DeleteTopics(ctx, topic)
	})
}

// TestReplayFromZeroThroughRuntime consumes the real file's topic through the
// runtime and the sink, checks every answer, resets the group's offsets to
// zero (nothing cleared in ClickHouse), consumes everything again and checks
// that no answer changed.
func TestReplayFromZeroThroughRuntime(t *testing.T) {
	events := testfixture.RealEvents(t)
	exp := testfixture.ExpectedFromCSV(t)
	brokers := testenv.KafkaBrokers(t)
	cfg := testConfig(t)
	topic := testfixture.ProduceTopic(t, brokers, events)
	adm := admin(t, brokers)
	deleteTopicAtCleanup(t, adm, consumers.DLQTopicFor(topic))
	group := testenv.Name("analytics")
	q, _ := newQueries(t, cfg)

	for pass := 1; pass <= 2; pass++ {
		start := time.Now()
		d := startDaemon(t, consumerConfig(brokers, topic, group), newSink(t, cfg))
		testfixture.WaitDrained(t, adm, group, topic, 10*time.Minute)
		if err := d.stop(); err != nil {
			t.Fatalf("pass %d: Run: %v", pass, err)
		}
		t.Logf("pass %d: %d events consumed in %s", pass, len(events), time.Since(start))
		checkAll(t, q, exp)
		checkStatuses(t, cfg, exp)
		if t.Failed() {
			t.FailNow()
		}
		resetOffsets(t, adm, group, topic)
	}
}

// expectedOf computes net revenue, lines and order rows of events with the
// projection's own mapping (for tests on a subset of the file).
func expectedOf(t testing.TB, events []schemas.Envelope) (net decimal.Decimal, lines, orders int64) {
	t.Helper()
	var r analytics.Rows
	for _, e := range events {
		if err := r.Add(e, "GBP"); err != nil {
			t.Fatal(err)
		}
	}
	net = decimal.Zero
	for _, l := range r.Lines {
		net = net.Add(l.Amount)
	}
	for _, o := range r.Orders {
		if o.Kind == schemas.KindSale {
			orders++
		}
	}
	return net, int64(len(r.Lines)), orders
}

func checkSubset(t *testing.T, q *analytics.Queries, net decimal.Decimal, lines, orders int64) {
	t.Helper()
	got, err := q.Summary(context.Background(), analytics.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	if !got.NetRevenue.Equal(net) || got.Lines != lines || got.Orders != orders {
		t.Errorf("net %s, lines %d, orders %d; want %s, %d, %d", got.NetRevenue, got.Lines, got.Orders, net, lines, orders)
	}
}

// TestPoisonEventGoesToDLQ puts an order.placed whose total is not the sum
// of its lines (valid against the JSON Schema, refused by the projection) in
// the middle of a partition: it lands in the DLQ with the reason, the later
// events of its order are parked behind it (none reaches the read model: no
// status row of an order without lines), and every other event, before and
// after it in its partition, is in the read model. A re-drive through an
// upgraded binary (a sink that accepts the record) then applies the order's
// events in order and every figure is exact.
func TestPoisonEventGoesToDLQ(t *testing.T) {
	all := testfixture.RealEvents(t)
	events := append([]schemas.Envelope(nil), all[:4000]...)
	poisonAt := -1
	for i := 2000; i < len(events) && poisonAt < 0; i++ {
		if events[i].EventType != schemas.TypeOrderPlaced {
			continue
		}
		for _, e := range events[i+1:] {
			if e.AggregateID == events[i].AggregateID {
				poisonAt = i // an order with events after its order.placed
				break
			}
		}
	}
	original := events[poisonAt]
	p, err := original.Decode()
	if err != nil {
		t.Fatal(err)
	}
	placed := *p.(*schemas.OrderPlaced)
	placed.Total.Amount = placed.Total.Amount.Add(decimal.RequireFromString("0.001"))
	poison, err := schemas.NewEnvelope(original.AggregateID, 1, original.OccurredAt, &placed, schemas.Metadata{})
	if err != nil {
		t.Fatal(err)
	}
	events[poisonAt] = poison
	var good, parked []schemas.Envelope
	for _, e := range events {
		switch {
		case e.AggregateID != poison.AggregateID:
			good = append(good, e)
		case e.EventID != poison.EventID:
			parked = append(parked, e)
		}
	}
	net, lines, orders := expectedOf(t, good)

	brokers := testenv.KafkaBrokers(t)
	cfg := testConfig(t)
	topic := testfixture.ProduceTopic(t, brokers, events)
	adm := admin(t, brokers)
	dlq := consumers.DLQTopicFor(topic)
	deleteTopicAtCleanup(t, adm, dlq)
	group := testenv.Name("analytics")
	d := startDaemon(t, consumerConfig(brokers, topic, group), newSink(t, cfg))
	testfixture.WaitDrained(t, adm, group, topic, 5*time.Minute)
	if err := d.stop(); err != nil {
		t.Fatalf("Run: %v", err)
	}
	q, _ := newQueries(t, cfg)
	checkSubset(t, q, net, lines, orders)
	if v := statusVersion(t, cfg, poison.AggregateID); v != 0 {
		t.Errorf("order %s has a status at version %d behind its dead letter, want none", poison.AggregateID, v)
	}

	// The DLQ holds the poison, with the projection's reason, then the
	// order's later events, parked, in order.
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumeTopics(dlq), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var got []*kgo.Record
	for len(got) < 1+len(parked) && ctx.Err() == nil {
		got = append(got, cl.PollFetches(ctx).Records()...)
	}
	if len(got) != 1+len(parked) {
		t.Fatalf("DLQ %s: %d records, want the poison and %d parked", dlq, len(got), len(parked))
	}
	for i, r := range got {
		hs := map[string]string{}
		for _, h := range r.Headers {
			hs[h.Key] = string(h.Value)
		}
		wantKind, wantID := consumers.KindRejected, poison.EventID.String()
		if i > 0 {
			wantKind, wantID = consumers.KindParked, parked[i-1].EventID.String()
		}
		if string(r.Key) != poison.AggregateID || hs[consumers.HeaderDLQKind] != wantKind || hs[consumers.HeaderDLQEventID] != wantID {
			t.Errorf("DLQ record %d: key %s headers %v, want key %s, kind %s, event %s", i, r.Key, hs, poison.AggregateID, wantKind, wantID)
		}
		if want := "is not the sum of the line amounts"; i == 0 && !contains(hs[consumers.HeaderDLQError], want) {
			t.Errorf("DLQ reason %q does not say %q", hs[consumers.HeaderDLQError], want)
		}
	}

	// The upgraded binary reads the record as the write side meant it.
	upgraded := &fixingSink{inner: newSink(t, cfg), fixed: map[uuid.UUID]schemas.Envelope{poison.EventID: original}}
	res, err := consumers.Redrive(ctx, consumers.RedriveConfig{Brokers: brokers, DLQTopic: dlq, Group: group}, upgraded, nil)
	if err != nil || len(res.Applied) != 1+len(parked) || len(res.Stuck) != 0 {
		t.Fatalf("re-drive: %d applied, %d stuck, %v; want %d, 0", len(res.Applied), len(res.Stuck), err, 1+len(parked))
	}
	for i, e := range res.Applied {
		if want := append([]schemas.Envelope{poison}, parked...)[i].EventID.String(); e.EventID != want {
			t.Fatalf("re-drive applied event %s as #%d, want %s", e.EventID, i, want)
		}
	}
	net, lines, orders = expectedOf(t, all[:4000])
	checkSubset(t, q, net, lines, orders)
	if v, want := statusVersion(t, cfg, poison.AggregateID), parked[len(parked)-1].AggregateVersion; v != uint64(want) {
		t.Errorf("order %s is at version %d after the re-drive, want %d", poison.AggregateID, v, want)
	}
}

// fixingSink replaces the events in fixed before writing to inner: a binary
// that understands what an older one rejected.
type fixingSink struct {
	inner consumers.Sink
	fixed map[uuid.UUID]schemas.Envelope
}

func (s *fixingSink) Write(ctx context.Context, batch []consumers.Record) error {
	out := make([]consumers.Record, len(batch))
	for i, r := range batch {
		if e, ok := s.fixed[r.Event.EventID]; ok {
			r.Event = e
		}
		out[i] = r
	}
	return s.inner.Write(ctx, out)
}

// statusVersion returns the version of order id's status in the serving
// generation, 0 when it has none.
func statusVersion(t testing.TB, cfg analytics.Config, id string) uint64 {
	t.Helper()
	conn, err := analytics.Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	var v uint64
	if err := conn.QueryRow(context.Background(), "SELECT max(version) FROM `"+cfg.Database+"`.order_status WHERE order_id = ?", id).Scan(&v); err != nil {
		t.Fatal(err)
	}
	return v
}

// interruptingSink stops the daemon in the middle of its n-th Write: the
// first half of that batch is made durable, then the daemon is cancelled
// (SIGTERM) while the whole batch is being written, so the batch ends
// partly written and uncommitted.
type interruptingSink struct {
	inner  *analytics.Sink
	n      int32
	calls  atomic.Int32
	cancel func()
}

func (s *interruptingSink) Write(ctx context.Context, batch []consumers.Record) error {
	if s.calls.Add(1) == s.n {
		if err := s.inner.Write(ctx, batch[:len(batch)/2]); err != nil {
			return err
		}
		s.cancel()
	}
	return s.inner.Write(ctx, batch)
}

// TestInterruptedBatchLosesAndDoublesNothing stops the daemon in the middle
// of a batch (half of it written, see interruptingSink) with a 1 ms shutdown
// allowance, so the batch is not committed; restarts it on the same group
// and checks the totals are exactly those of the events: the half written
// twice is not double-counted, the half not written is not lost.
func TestInterruptedBatchLosesAndDoublesNothing(t *testing.T) {
	events := testfixture.RealEvents(t)[:12000]
	net, lines, orders := expectedOf(t, events)
	brokers := testenv.KafkaBrokers(t)
	cfg := testConfig(t)
	topic := testfixture.ProduceTopic(t, brokers, events)
	adm := admin(t, brokers)
	deleteTopicAtCleanup(t, adm, consumers.DLQTopicFor(topic))
	group := testenv.Name("analytics")

	ccfg := consumerConfig(brokers, topic, group)
	ccfg.BatchMaxRecords = 1000
	ccfg.ShutdownTimeout = time.Millisecond
	d := newDaemon()
	sink := &interruptingSink{inner: newSink(t, cfg), n: 3, cancel: d.cancel}
	d.start(t, ccfg, sink)
	err := d.wait()
	t.Logf("interrupted after %d write(s): Run returned %v", sink.calls.Load(), err)

	q, _ := newQueries(t, cfg)
	partial, err := q.Summary(context.Background(), analytics.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	if partial.Lines >= lines {
		t.Fatalf("the interruption came too late: %d of %d lines already written", partial.Lines, lines)
	}
	d2 := startDaemon(t, consumerConfig(brokers, topic, group), newSink(t, cfg))
	testfixture.WaitDrained(t, adm, group, topic, 5*time.Minute)
	if err := d2.stop(); err != nil {
		t.Fatalf("Run after restart: %v", err)
	}
	checkSubset(t, q, net, lines, orders)
}
