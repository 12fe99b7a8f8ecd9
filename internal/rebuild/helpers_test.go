package rebuild

import (
	"context"
	"errors"
	"github.com/orderstream/orderstream/internal/testenv"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/orderstream/orderstream/consumers"
	"github.com/orderstream/orderstream/internal/testfixture"
	"github.com/orderstream/orderstream/schemas"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// testLog logs warnings and errors to the test's output.
func testLog(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
}

// admin returns a kadm client of brokers, closed at cleanup.
func admin(t testing.TB, brokers []string) *kadm.Client {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return kadm.NewClient(cl)
}

// startDaemon runs a consumer of group over topic into sink, as `orderstream
// consume` does, until stop is called or the test ends; the group is deleted
// at cleanup. stop may be called more than once.
func startDaemon(t testing.TB, brokers []string, topic, group string, sink consumers.Sink) (stop func()) {
	t.Helper()
	return startDaemonOf(t, brokers, topic, group, group, sink)
}

// startDaemonOf is startDaemon with the projection named in the daemon's
// dead letters and the runtime's options opts.
func startDaemonOf(t testing.TB, brokers []string, topic, group, projection string, sink consumers.Sink, opts ...consumers.Option) (stop func()) {
	t.Helper()
	c, err := consumers.New(consumers.Config{Brokers: brokers, Topic: topic, Group: group, Projection: projection,
		DLQTopic: topic + ".dlq", LagInterval: time.Second}, sink, append([]consumers.Option{consumers.WithLogger(testLog(t))}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("daemon %s: %v", group, err)
			}
		})
	}
	t.Cleanup(func() {
		stop()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		adm := admin(t, brokers)
		_ = consumers.DeleteGroup(ctx, adm, group)
		_, _ = adm.DeleteTopic(ctx, topic+".dlq")
	})
	return stop
}

// waitCaughtUp polls until group committed up to the topic's end offsets.
func waitCaughtUp(t testing.TB, adm *kadm.Client, topic, group string, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		g, err := consumers.InspectGroup(ctx, adm, topic, group)
		cancel()
		if err == nil && g.Exists() && g.Lag == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("group %s not caught up on %s after %s: lag %d, err %v", group, topic, within, g.Lag, err)
		}
		time.Sleep(200 * time.Millisecond) // polling interval, not a wait for an event
	}
}

// filledByDaemon produces the first 400 real events to a new topic, runs a
// daemon of a new group over it into m until the group caught up, and
// stops it: m's serving generation holds every event, and whatever the
// test produces afterwards lies past the group's committed offsets. The
// events returned may be appended to (not into the shared fixture).
func filledByDaemon(t testing.TB, brokers []string, m model) (events []schemas.Envelope, topicName, group string) {
	t.Helper()
	events = slices.Clip(testfixture.RealEvents(t)[:400])
	topicName = testfixture.ProduceTopic(t, brokers, events)
	group = testenv.Name("daemon")
	stop := startDaemon(t, brokers, topicName, group, m.daemon)
	waitCaughtUp(t, admin(t, brokers), topicName, group, 2*time.Minute)
	stop()
	return events, topicName, group
}

// eventually polls cond every 200 ms until it holds or within passes.
func eventually(t testing.TB, within time.Duration, what string, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not true after %s: %v", what, within, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// produce writes events to topic (acks=all) with the relay's record shape.
func produce(t testing.TB, brokers []string, topic string, events ...schemas.Envelope) {
	t.Helper()
	v, err := schemas.NewValidator()
	if err != nil {
		t.Fatal(err)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.DefaultProduceTopic(topic))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var recs []*kgo.Record
	for _, e := range events {
		r, err := testfixture.Record(v, topic, e)
		if err != nil {
			t.Fatal(err)
		}
		recs = append(recs, r)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatalf("produce to %s: %v", topic, err)
	}
}

// produceRaw writes one record of key and value to topic and returns it
// with its partition and offset.
func produceRaw(t testing.TB, brokers []string, topic, key string, value []byte) *kgo.Record {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.DefaultProduceTopic(topic))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	r, err := cl.ProduceSync(ctx, &kgo.Record{Key: []byte(key), Value: value}).First()
	if err != nil {
		t.Fatalf("produce to %s: %v", topic, err)
	}
	return r
}

// newOrder returns a copy of the first order.placed of a sale in events as
// the first event of a new order (fresh aggregate id and event id).
func newOrder(t testing.TB, events []schemas.Envelope) schemas.Envelope {
	t.Helper()
	for _, e := range events {
		if e.EventType != schemas.TypeOrderPlaced {
			continue
		}
		e.AggregateID = uuid.NewString()
		e.EventID = uuid.Must(uuid.NewV7())
		e.AggregateVersion = 1
		return e
	}
	t.Fatal("no order.placed among the events")
	return schemas.Envelope{}
}

// strictError returns the *consumers.StrictError in err's chain.
func strictError(err error) (*consumers.StrictError, bool) {
	var se *consumers.StrictError
	ok := errors.As(err, &se)
	return se, ok
}

// eventsWriteSide is the write side the events came from: each order at
// the highest aggregate_version among them (what orders.version holds after
// they were written), every event relayed.
type eventsWriteSide []schemas.Envelope

func (w eventsWriteSide) RelayedVersions(context.Context) (Versions, error) {
	vs := Versions{}
	for _, e := range w {
		vs[e.AggregateID] = max(vs[e.AggregateID], e.AggregateVersion)
	}
	return vs, nil
}
