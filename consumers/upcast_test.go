package consumers

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/orderstream/orderstream/schemas"
	"github.com/shopspring/decimal"
)

// versioned returns the record value of an event of order id at aggregate
// version av, written as schema version sv (as a writer with
// --event-version sv writes it): order.placed at av 1, order.paid after.
func versioned(t testing.TB, id string, av int64, sv int) []byte {
	t.Helper()
	at := time.Date(2011, 1, 2, 3, 4, 5, 0, time.UTC)
	gbp := func(s string) schemas.Money { return schemas.NewMoney(decimal.RequireFromString(s), "GBP") }
	var p schemas.Payload = &schemas.OrderPaid{Amount: gbp("12.5")}
	if av == 1 {
		p = &schemas.OrderPlaced{OrderNumber: id, Kind: schemas.KindSale, Customer: schemas.Customer{ID: "17850", Country: "France"}, Currency: "GBP",
			Lines: []schemas.Line{{LineNo: 1, StockCode: "85123A", Quantity: 5, UnitPrice: gbp("2.5"), InvoicedAt: at}}, Total: gbp("12.5")}
	}
	env, err := schemas.NewEnvelope(id, av, at, p, schemas.Metadata{})
	if err != nil {
		t.Fatal(err)
	}
	if env, err = schemas.NewUpcasters().Downcast(env, sv); err != nil {
		t.Fatal(err)
	}
	b, err := validator.Marshal(env)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// decodingSink decodes every record as a read model does (Envelope.Decode:
// the newest version only) and remembers (order, aggregate version) in
// write order; a payload that does not decode fails the test.
type decodingSink struct {
	t       testing.TB
	mu      sync.Mutex
	applied []string
}

func (s *decodingSink) Write(_ context.Context, batch []Record) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, r := range batch {
		p, err := r.Event.Decode()
		if err != nil {
			s.t.Errorf("sink got an event it cannot read: %v", err)
			continue
		}
		if pl, ok := p.(*schemas.OrderPlaced); ok && pl.Customer.Country != "France" {
			s.t.Errorf("order.placed of %s upcast with customer %+v", r.Event.AggregateID, pl.Customer)
		}
		s.applied = append(s.applied, r.Event.AggregateID+"@"+string(rune('0'+r.Event.AggregateVersion)))
	}
	return nil
}

func (s *decodingSink) got() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return strings.Join(s.applied, " ")
}

// TestUpcastMixedVersionsOfOneOrder: an order placed as v1 and paid as v2
// (a writer switched versions between them) reaches the sink as v2 events
// in order; the records in Kafka are not rewritten.
func TestUpcastMixedVersionsOfOneOrder(t *testing.T) {
	t.Parallel()
	const topic = "orders"
	brokers := newFake(t, topic, 1)
	placedV1 := versioned(t, "a", 1, 1)
	produceRaw(t, brokers, topic, 0, "a", placedV1)
	produceRaw(t, brokers, topic, 0, "a", versioned(t, "a", 2, 2))
	produceRaw(t, brokers, topic, 0, "b", versioned(t, "b", 1, 2))
	produceRaw(t, brokers, topic, 0, "b", versioned(t, "b", 2, 1))
	sink := &decodingSink{t: t}
	c, err := New(testConfig(brokers, topic), sink, WithLogger(testLogger(t)), fastGroup())
	if err != nil {
		t.Fatal(err)
	}
	runUntilCommitted(t, c, brokers, topic, 4, 15*time.Second)
	if got := sink.got(); got != "a@1 a@2 b@1 b@2" {
		t.Fatalf("applied %q, want a@1 a@2 b@1 b@2", got)
	}
	if recs := readAll(t, brokers, topic, 4); string(recs[0].Value) != string(placedV1) {
		t.Fatalf("the v1 record changed in Kafka: %s", recs[0].Value)
	}
}

// TestOldConsumerDeadLettersNewerVersion: a consumer of the previous
// release (reading up to v1) meeting v2 events neither crashes nor skips
// them silently: each goes to the DLQ naming the reason, the order's later
// events are parked behind it, other orders flow; after the upgrade
// `dlq replay` (Redrive, this build's chain) applies them in order.
func TestOldConsumerDeadLettersNewerVersion(t *testing.T) {
	t.Parallel()
	const topic = "orders"
	brokers := newFake(t, topic, 1)
	produceRaw(t, brokers, topic, 0, "a", versioned(t, "a", 1, 1))
	produceRaw(t, brokers, topic, 0, "b", versioned(t, "b", 1, 2)) // newer than the consumer
	produceRaw(t, brokers, topic, 0, "b", versioned(t, "b", 2, 1)) // v1, but behind b's dead letter
	produceRaw(t, brokers, topic, 0, "a", versioned(t, "a", 2, 1))
	c, sink := runOldConsumer(t, brokers, topic, 4)
	if got := sink.got(); got != "a@1 a@2" {
		t.Fatalf("the old consumer applied %q, want a@1 a@2 (b dead-lettered and parked)", got)
	}
	dlq := readAll(t, brokers, c.Config().DLQTopic, 2)
	first, err := ParseDLQ(dlq[0])
	if err != nil {
		t.Fatal(err)
	}
	if first.Kind != KindDecode || first.OrderID != "b" || first.SourceOffset != 1 || !strings.Contains(first.Error, schemas.ErrNewerVersion.Error()) ||
		!strings.Contains(first.Error, "order.placed v2") {
		t.Fatalf("dead letter = %+v, want b's order.placed v2 as newer than the consumer reads", first)
	}
	if second, err := ParseDLQ(dlq[1]); err != nil || second.Kind != KindParked || second.SourceOffset != 2 {
		t.Fatalf("second dead letter = %+v, %v; want b's order.paid parked", second, err)
	}

	res, err := Redrive(context.Background(), RedriveConfig{Brokers: brokers, DLQTopic: c.Config().DLQTopic, Group: c.Config().Group}, sink, testLogger(t))
	if err != nil || len(res.Applied) != 2 || len(res.Stuck) != 0 {
		t.Fatalf("re-drive after the upgrade: %+v, %v", res, err)
	}
	if got := sink.got(); got != "a@1 a@2 b@1 b@2" {
		t.Fatalf("applied %q after the re-drive, want a@1 a@2 b@1 b@2", got)
	}
}

// runOldConsumer runs a consumer of a release that reads up to v1 on topic
// until it committed n records, and returns it and its sink.
func runOldConsumer(t *testing.T, brokers []string, topic string, n int) (*Consumer, *decodingSink) {
	t.Helper()
	sink := &decodingSink{t: t}
	c, err := New(testConfig(brokers, topic), sink, WithLogger(testLogger(t)), fastGroup(), WithUpcasters(schemas.NewUpcasters().ReadingUpTo(1)))
	if err != nil {
		t.Fatal(err)
	}
	runUntilCommitted(t, c, brokers, topic, n, 15*time.Second)
	return c, sink
}

// TestStrictStopsAtNewerVersion: a strict run (a rebuild) of a consumer
// that does not read v2 stops at the first v2 event, naming its partition
// and offset and the reason.
func TestStrictStopsAtNewerVersion(t *testing.T) {
	t.Parallel()
	const topic = "orders"
	brokers := newFake(t, topic, 2)
	produceRaw(t, brokers, topic, 1, "a", versioned(t, "a", 1, 1))
	produceRaw(t, brokers, topic, 1, "a", versioned(t, "a", 2, 2))
	cfg := testConfig(brokers, topic)
	cfg.Strict = true
	sink := &decodingSink{t: t}
	c, err := New(cfg, sink, WithLogger(testLogger(t)), fastGroup(), WithUpcasters(schemas.NewUpcasters().ReadingUpTo(1)))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	err = c.Run(ctx)
	var se *StrictError
	if !errors.As(err, &se) || se.Partition != 1 || se.Offset != 1 || !errors.Is(err, schemas.ErrNewerVersion) ||
		!strings.Contains(err.Error(), "partition 1 offset 1") {
		t.Fatalf("Run = %v, want a strict stop at partition 1 offset 1 wrapping ErrNewerVersion", err)
	}
	if got := sink.got(); got != "a@1" {
		t.Fatalf("applied %q, want a@1", got)
	}
}

// TestKeyNotAggregateDeadLettered: the record key is the order id (the wire
// contract; parking goes by it). A record whose key names another order
// than its event's aggregate_id is dead-lettered naming both, never
// applied: applied, it bypassed the parking of its order (here b, parked
// behind a newer-version dead letter, got b@2 applied without b@1).
func TestKeyNotAggregateDeadLettered(t *testing.T) {
	t.Parallel()
	const topic = "orders"
	brokers := newFake(t, topic, 1)
	produceRaw(t, brokers, topic, 0, "a", versioned(t, "a", 1, 1))
	produceRaw(t, brokers, topic, 0, "b", versioned(t, "b", 1, 2)) // newer than the consumer: b parked
	produceRaw(t, brokers, topic, 0, "x", versioned(t, "b", 2, 1)) // b's next event under another key
	produceRaw(t, brokers, topic, 0, "", versioned(t, "a", 2, 1))  // no key at all
	c, sink := runOldConsumer(t, brokers, topic, 4)
	if got := sink.got(); got != "a@1" {
		t.Fatalf("applied %q, want a@1 (b parked, the mis-keyed records dead-lettered)", got)
	}
	dlq := readAll(t, brokers, c.Config().DLQTopic, 3)
	for i, want := range []string{`record key "x" is not the event's aggregate_id "b"`, `record key "" is not the event's aggregate_id "a"`} {
		e, err := ParseDLQ(dlq[i+1])
		if err != nil || e.Kind != KindDecode || e.SourceOffset != int64(i+2) || !strings.Contains(e.Error, want) {
			t.Errorf("dead letter %d = %+v, %v; want kind decode at offset %d naming %s", i+1, e, err, i+2, want)
		}
	}
	res, err := Redrive(context.Background(), RedriveConfig{Brokers: brokers, DLQTopic: c.Config().DLQTopic, Group: c.Config().Group}, sink, testLogger(t))
	if err != nil || len(res.Stuck) != 2 {
		t.Fatalf("re-drive: %+v, %v; want the two mis-keyed records stuck", res, err)
	}
	if got := sink.got(); got != "a@1 b@1" {
		t.Fatalf("applied %q after the re-drive, want a@1 b@1", got)
	}
}
