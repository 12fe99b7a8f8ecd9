package consumers

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// poisonSink is a read model that rejects the events in its poison set
// until fix is called (an upgraded binary), records what it applied, and,
// as a Preparer and Screener, says which records it rejects before the
// write (as the analytics sink does).
type poisonSink struct {
	mu      sync.Mutex
	poison  map[string]bool     // event ids rejected
	applied map[string][]string // order → "v<version>" in the order applied
	times   map[string]int      // event id → times applied
}

func newPoisonSink(poison ...string) *poisonSink {
	s := &poisonSink{poison: map[string]bool{}, applied: map[string][]string{}, times: map[string]int{}}
	for _, id := range poison {
		s.poison[id] = true
	}
	return s
}

func (s *poisonSink) fix() {
	s.mu.Lock()
	defer s.mu.Unlock()
	clear(s.poison)
}

func (s *poisonSink) Write(ctx context.Context, batch []Record) error {
	return s.Prepare(batch).Write(ctx)
}

func (s *poisonSink) Prepare(batch []Record) Prepared {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := &poisonPrepared{s: s, rejected: map[int]error{}}
	for i, r := range batch {
		if s.poison[r.Event.EventID.String()] {
			p.rejected[i] = fmt.Errorf("event %s: unknown version", r.Event.EventID)
			continue
		}
		p.ok = append(p.ok, r)
	}
	return p
}

type poisonPrepared struct {
	s        *poisonSink
	ok       []Record
	rejected map[int]error
}

func (p *poisonPrepared) Rejected() map[int]error { return p.rejected }

func (p *poisonPrepared) Write(context.Context) error {
	p.s.mu.Lock()
	defer p.s.mu.Unlock()
	for _, r := range p.ok {
		p.s.applied[string(r.Key)] = append(p.s.applied[string(r.Key)], fmt.Sprintf("v%d", r.Event.AggregateVersion))
		p.s.times[r.Event.EventID.String()]++
	}
	if len(p.rejected) > 0 {
		return &RejectedError{Rejected: p.rejected}
	}
	return nil
}

// history returns the versions applied of order key, in order.
func (s *poisonSink) history(key string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return strings.Join(s.applied[key], ",")
}

// total returns the number of writes and distinct events applied.
func (s *poisonSink) total() (writes, distinct int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, n := range s.times {
		writes += n
	}
	return writes, len(s.times)
}

// ev is one event to produce: order key and version.
type ev struct {
	key     string
	version int64
}

// produceEvents writes evs in order (an order's events land in one
// partition, by key) and returns their event ids.
func produceEvents(t testing.TB, brokers []string, topic string, evs ...ev) []string {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ids := make([]string, len(evs))
	recs := make([]*kgo.Record, len(evs))
	for i, e := range evs {
		v, id := eventValue(t, e.key, e.version)
		ids[i] = id
		recs[i] = &kgo.Record{Topic: topic, Key: []byte(e.key), Value: v,
			Headers: []kgo.RecordHeader{{Key: "ce_id", Value: []byte(id)}, {Key: "ce_type", Value: []byte("order.paid")}}}
	}
	if err := cl.ProduceSync(context.Background(), recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	return ids
}

// dlqEntries reads the dead letters of topic's DLQ (markers left out) once
// it holds at least n records in all.
func dlqEntries(t testing.TB, brokers []string, topic string, n int) []DLQEntry {
	t.Helper()
	var out []DLQEntry
	for _, r := range readAll(t, brokers, DLQTopicFor(topic), n) {
		if !IsDeadLetter(r) {
			continue
		}
		e, err := ParseDLQ(r)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, e)
	}
	return out
}

func byGroup(es []DLQEntry) map[string]int {
	m := map[string]int{}
	for _, e := range es {
		m[e.Group]++
	}
	return m
}

func redrive(t testing.TB, brokers []string, topic, group string, sink Sink) RedriveResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	res, err := Redrive(ctx, RedriveConfig{Brokers: brokers, DLQTopic: DLQTopicFor(topic), Group: group}, sink, testLogger(t))
	if err != nil {
		t.Fatalf("re-drive of %s: %v", group, err)
	}
	return res
}

// endOffsets sums the end offsets of topic.
func endOffsets(t testing.TB, brokers []string, topic string) int64 {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ends, err := kadm.NewClient(cl).ListEndOffsets(context.Background(), topic)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		t.Fatal(err)
	}
	var n int64
	ends.Each(func(o kadm.ListedOffset) { n += o.Offset })
	return n
}

// Both groups dead-letter the same 128 poison records into the one DLQ; a
// re-drive of each group applies each record once to that group's read
// model only, writes nothing to the events topic, and a second re-drive
// applies nothing.
func TestKafkaRedriveEachGroupOnceAndIdempotent(t *testing.T) {
	t.Parallel()
	brokers, topic := realTopic(t, 4)
	var evs []ev
	for i := range 256 {
		evs = append(evs, ev{fmt.Sprintf("order-%d", i), 1})
	}
	ids := produceEvents(t, brokers, topic, evs...)
	var poison []string
	for i := 0; i < len(ids); i += 2 {
		poison = append(poison, ids[i])
	}
	groups := []string{topic + "-analytics", topic + "-search"}
	sinks := map[string]*poisonSink{}
	for _, g := range groups {
		sinks[g] = newPoisonSink(poison...)
		cfg := realConfig(brokers, topic)
		cfg.Group, cfg.Projection = g, g
		c, err := New(cfg, sinks[g], WithLogger(testLogger(t)))
		if err != nil {
			t.Fatal(err)
		}
		runUntilCommitted(t, c, brokers, topic, len(ids), 60*time.Second)
	}
	dl := dlqEntries(t, brokers, topic, 2*len(poison))
	if got := byGroup(dl); got[groups[0]] != 128 || got[groups[1]] != 128 || len(dl) != 256 {
		t.Fatalf("dead letters by group = %v (%d in all), want 128 each", got, len(dl))
	}
	for _, g := range groups {
		if w, d := sinks[g].total(); w != 128 || d != 128 {
			t.Fatalf("%s applied %d writes of %d events before the re-drive, want 128 of 128", g, w, d)
		}
		sinks[g].fix()
	}
	for _, g := range groups {
		res := redrive(t, brokers, topic, g, sinks[g])
		if len(res.Applied) != 128 || len(res.Stuck) != 0 {
			t.Fatalf("re-drive of %s applied %d, stuck %d; want 128, 0", g, len(res.Applied), len(res.Stuck))
		}
		for _, e := range res.Applied {
			if e.Group != g {
				t.Fatalf("re-drive of %s applied a dead letter of %s", g, e.Group)
			}
		}
		if w, d := sinks[g].total(); w != 256 || d != 256 {
			t.Errorf("%s: %d writes of %d events after the re-drive, want each of the 256 once", g, w, d)
		}
	}
	for _, g := range groups {
		if res := redrive(t, brokers, topic, g, sinks[g]); len(res.Applied) != 0 {
			t.Errorf("second re-drive of %s applied %d records, want 0", g, len(res.Applied))
		}
		if w, _ := sinks[g].total(); w != 256 {
			t.Errorf("%s: %d writes after the second re-drive, want 256", g, w)
		}
	}
	if n := endOffsets(t, brokers, topic); n != int64(len(ids)) {
		t.Errorf("events topic holds %d records, want %d: a re-drive wrote to it", n, len(ids))
	}
	if dl := dlqEntries(t, brokers, topic, 256+256); len(dl) != 256 {
		t.Errorf("%d dead letters after the re-drives, want still 256 (re-drives add only markers)", len(dl))
	}
}

// An order's events behind its dead letter are parked (never applied),
// also after the consumer restarts; a re-drive of the fixed record applies
// the dead letter and then the parked events in order, and the order's
// next events apply directly again.
func TestKafkaParkedOrderWaitsForRedrive(t *testing.T) {
	t.Parallel()
	brokers, topic := realTopic(t, 2)
	ids := produceEvents(t, brokers, topic, ev{"order-p", 1}, ev{"order-q", 1}, ev{"order-p", 2}, ev{"order-q", 2})
	sink := newPoisonSink(ids[0]) // order-p's first event: an unknown version
	cfg := realConfig(brokers, topic)
	c1, err := New(cfg, sink, WithLogger(testLogger(t)))
	if err != nil {
		t.Fatal(err)
	}
	runUntilCommitted(t, c1, brokers, topic, 4, 60*time.Second)
	if h := sink.history("order-p"); h != "" {
		t.Fatalf("order-p: applied %s behind its dead letter", h)
	}
	if h := sink.history("order-q"); h != "v1,v2" {
		t.Fatalf("order-q applied %q, want v1,v2", h)
	}
	dl := dlqEntries(t, brokers, topic, 2)
	if len(dl) != 2 || dl[0].Kind != KindRejected || dl[0].EventID != ids[0] || dl[1].Kind != KindParked || dl[1].EventID != ids[2] ||
		dl[0].Partition != dl[1].Partition || dl[0].Offset > dl[1].Offset {
		t.Fatalf("dead letters = %+v, want order-p v1 (rejected) then v2 (parked) in one partition", dl)
	}

	// A new consumer (a restart) still parks order-p: the parked set is
	// rebuilt from the DLQ.
	ids = append(ids, produceEvents(t, brokers, topic, ev{"order-p", 3}, ev{"order-q", 3})...)
	c2, err := New(cfg, sink, WithLogger(testLogger(t)))
	if err != nil {
		t.Fatal(err)
	}
	stop, _ := start(t, c2)
	eventually(t, 60*time.Second, "6 records committed", func() bool {
		return sum(committed(t, brokers, cfg.Group, topic)) == 6
	})
	if h := sink.history("order-p"); h != "" {
		t.Fatalf("order-p: applied %s after a restart, behind its dead letter", h)
	}
	if dl := dlqEntries(t, brokers, topic, 3); len(dl) != 3 || dl[2].Kind != KindParked || dl[2].EventID != ids[4] {
		t.Fatalf("after the restart: dead letters %+v, want order-p v3 parked third", dl)
	}

	// The upgraded binary accepts order-p v1: the re-drive applies v1, v2,
	// v3 in order while the consumer runs.
	sink.fix()
	res := redrive(t, brokers, topic, cfg.Group, sink)
	if len(res.Applied) != 3 || len(res.Stuck) != 0 {
		t.Fatalf("re-drive applied %d, stuck %d; want 3, 0", len(res.Applied), len(res.Stuck))
	}
	if h := sink.history("order-p"); h != "v1,v2,v3" {
		t.Fatalf("order-p applied %q by the re-drive, want v1,v2,v3", h)
	}
	// The running consumer learns of the re-drive: order-p's next event
	// applies directly.
	ids = append(ids, produceEvents(t, brokers, topic, ev{"order-p", 4})...)
	eventually(t, 60*time.Second, "7 records committed", func() bool {
		return sum(committed(t, brokers, cfg.Group, topic)) == 7
	})
	if err := stop(); err != nil {
		t.Fatalf("Run: %v", err)
	}
	if h := sink.history("order-p"); h != "v1,v2,v3,v4" {
		t.Fatalf("order-p applied %q, want v1,v2,v3,v4", h)
	}
	if w, d := sink.total(); w != len(ids) || d != len(ids) {
		t.Errorf("%d writes of %d events, want each of the %d once", w, d, len(ids))
	}
	if dl := dlqEntries(t, brokers, topic, 3+3); len(dl) != 3 {
		t.Errorf("%d dead letters, want 3 (order-p v4 applied directly)", len(dl))
	}
}

// A strict run (a rebuild) stops at a record the daemon dead-lettered and
// says so; with SkipDeadLettered it skips it and the record parked behind
// it, lists both, and applies everything else.
func TestKafkaStrictSkipsDeadLettered(t *testing.T) {
	t.Parallel()
	brokers, topic := realTopic(t, 1)
	ids := produceEvents(t, brokers, topic, ev{"order-a", 1}, ev{"order-p", 1}, ev{"order-b", 1}, ev{"order-p", 2}, ev{"order-c", 1})
	daemon := realConfig(brokers, topic)
	daemon.Projection = "analytics"
	c, err := New(daemon, newPoisonSink(ids[1]), WithLogger(testLogger(t)))
	if err != nil {
		t.Fatal(err)
	}
	runUntilCommitted(t, c, brokers, topic, len(ids), 60*time.Second)
	dlqEntries(t, brokers, topic, 2)

	strict := daemon
	strict.Group, strict.Strict = topic+"-rebuild", true
	c, err = New(strict, newPoisonSink(ids[1]), WithLogger(testLogger(t)))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	err = c.Run(ctx)
	var se *StrictError
	if !errors.As(err, &se) || se.Offset != 1 || se.DeadLetteredBy != daemon.Group || !strings.Contains(se.Error(), "--skip-dead-lettered") {
		t.Fatalf("strict run without skipping: %v; want a StrictError at offset 1 naming group %s and --skip-dead-lettered", err, daemon.Group)
	}

	strict.Group, strict.SkipDeadLettered = topic+"-rebuild2", true
	sink := newPoisonSink(ids[1])
	c, err = New(strict, sink, WithLogger(testLogger(t)))
	if err != nil {
		t.Fatal(err)
	}
	runUntilCommitted(t, c, brokers, topic, len(ids), 60*time.Second)
	skipped := c.Skipped()
	var got []string
	for _, e := range skipped {
		got = append(got, fmt.Sprintf("%d/%d %s %s", e.SourcePartition, e.SourceOffset, e.EventID, e.Kind))
	}
	want := []string{"0/1 " + ids[1] + " rejected", "0/3 " + ids[3] + " parked"}
	if !slices.Equal(got, want) {
		t.Errorf("skipped = %q, want %q", got, want)
	}
	if w, d := sink.total(); w != 3 || d != 3 || sink.history("order-p") != "" {
		t.Errorf("applied %d writes of %d events (order-p: %q), want the 3 of orders a, b, c", w, d, sink.history("order-p"))
	}
}

// A redelivery (the group's offsets moved back, as after a crash before the
// commit) writes an order's records from before its dead letter again, as
// any redelivery, and neither parks them nor dead-letters anything twice.
func TestKafkaRedeliveryOfParkedOrder(t *testing.T) {
	t.Parallel()
	brokers, topic := realTopic(t, 1)
	ids := produceEvents(t, brokers, topic, ev{"order-x", 1}, ev{"order-x", 2}, ev{"order-x", 3}, ev{"order-y", 1})
	sink := newPoisonSink(ids[1])
	cfg := realConfig(brokers, topic)
	for round := range 2 {
		if round == 1 {
			commitOffset(t, brokers, cfg.Group, topic, 0, 0)
		}
		c, err := New(cfg, sink, WithLogger(testLogger(t)))
		if err != nil {
			t.Fatal(err)
		}
		runUntilCommitted(t, c, brokers, topic, len(ids), 60*time.Second)
	}
	if h := sink.history("order-x"); h != "v1,v1" {
		t.Errorf("order-x applied %q, want v1 twice (a redelivery) and nothing behind its dead letter", h)
	}
	if h := sink.history("order-y"); h != "v1,v1" {
		t.Errorf("order-y applied %q, want v1 twice (a redelivery)", h)
	}
	if dl := dlqEntries(t, brokers, topic, 2); len(dl) != 2 || dl[0].EventID != ids[1] || dl[1].EventID != ids[2] {
		t.Errorf("dead letters = %+v, want order-x v2 and v3 once each", dl)
	}
}
