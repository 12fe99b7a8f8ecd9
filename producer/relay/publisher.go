package relay

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/orderstream/orderstream/internal/tracing"
	"github.com/orderstream/orderstream/schemas"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Source is the ce_source header of every record (schemas.EventSource).
const Source = schemas.EventSource

// HeaderPosition is the header carrying the relay position (see Position).
const HeaderPosition = "relay_position"

// event is one outbox row on its way to Kafka.
type event struct {
	pos              Position
	outboxID         int64 // outbox.id
	eventID          string
	aggregateID      string
	aggregateVersion int64
	eventType        string
	schemaVersion    int // outbox.schema_version; 0 when not read (header omitted)
	occurredAt       time.Time
	committedAt      time.Time // its transaction's commit time (WAL mode; zero in poll mode)
	traceparent      string
	envelope         []byte // the outbox.envelope text, byte for byte
}

// record builds the Kafka record of e: key = aggregate id, value = the
// envelope, the contract's headers (schemas.RecordHeaders) and
// relay_position.
func (e *event) record(topic string) *kgo.Record {
	return e.recordTraced(topic, e.traceparent, "")
}

// recordTraced is record with the trace context traceparent, tracestate
// (the relay's producer span's) in the headers.
func (e *event) recordTraced(topic, traceparent, tracestate string) *kgo.Record {
	h := schemas.RecordHeaders(make([]kgo.RecordHeader, 0, 13), schemas.RecordFields{
		EventID: e.eventID, EventType: e.eventType, AggregateID: e.aggregateID,
		AggregateVersion: e.aggregateVersion, OccurredAt: e.occurredAt, Traceparent: traceparent, Tracestate: tracestate,
		SchemaVersion: e.schemaVersion,
	})
	h = append(h, kgo.RecordHeader{Key: HeaderPosition, Value: []byte(e.pos.String())})
	return &kgo.Record{Topic: topic, Key: []byte(e.aggregateID), Value: e.envelope, Headers: h}
}

// publisher produces events in order with bounded memory and skips the ones
// their partition already holds.
type publisher struct {
	client     *kgo.Client
	topic      string
	partitions int
	part       kgo.TopicPartitioner
	last       map[int32]Position // last relay position per partition at start
	maxEvents  int                // bound on the events in flight
	maxBytes   int64              // bound on their bytes (recordBytes)
	m          *metrics
	log        *slog.Logger
	onInFlight func(int, int64) // test hook: in-flight count and bytes after each acquire
	skipped    bool             // a duplicate was skipped (logged once); publish is called from one goroutine
	oversized  *oversized       // what to do with a record Kafka would refuse for its size

	mu            sync.Mutex
	inFlight      int           // events handed to the client and not acked
	inFlightBytes int64         // their bytes
	freed         chan struct{} // signalled (without blocking) when an ack frees room
	errOnce       sync.Once
	failed        chan struct{}
	err           error
}

func newPublisher(client *kgo.Client, topic string, partitions, maxInFlight int, maxBytes int64, last map[int32]Position, m *metrics, log *slog.Logger) *publisher {
	return &publisher{
		client: client, topic: topic, partitions: partitions,
		// Kafka's (and Java's) default for keyed records: murmur2 of the key,
		// high bit masked, modulo the partition count. Computing it here lets
		// the duplicate rule know the partition before producing; records are
		// then produced to that partition explicitly.
		part:      kgo.StickyKeyPartitioner(nil).ForTopic(topic),
		last:      last,
		maxEvents: maxInFlight, maxBytes: maxBytes, freed: make(chan struct{}, 1),
		m: m, log: log, failed: make(chan struct{}),
	}
}

// fail records the first produce error; every later publish returns it.
func (p *publisher) fail(err error) {
	p.errOnce.Do(func() {
		p.err = err
		close(p.failed)
	})
}

// Err returns the first produce error, or nil.
func (p *publisher) Err() error {
	select {
	case <-p.failed:
		return p.err
	default:
		return nil
	}
}

// publish produces e unless its partition already holds it (then it returns
// false and counts a duplicate). before runs just before the record is
// handed to the client (count it in flight there), acked after Kafka acked it.
// While the in-flight bound is reached publish blocks, calling idle about
// every second (WAL mode answers the server there). It returns the first
// produce error of any earlier record, or ctx's error.
func (p *publisher) publish(ctx context.Context, e *event, idle func() error, before, acked func()) (bool, error) {
	r := e.record(p.topic)
	partition := int32(p.part.Partition(r, p.partitions))
	r.Partition = partition
	if last, ok := p.last[partition]; ok && alreadyPublished(e.pos, last, true) {
		p.m.duplicates.Inc()
		if !p.skipped {
			p.skipped = true
			p.log.Info("skipping events already in their partition (published before a restart)", "event_id", e.eventID,
				"partition", partition, "position", e.pos.String(), "partition_last", last.String())
		}
		p.log.Debug("skipping event already in its partition", "event_id", e.eventID, "order_id", e.aggregateID,
			"partition", partition, "position", e.pos.String(), "partition_last", last.String())
		return false, nil
	}
	if parked, err := p.oversized.check(ctx, e, r); parked || err != nil {
		return false, err
	}
	weight := recordBytes(r)
	if err := p.acquire(ctx, idle, weight); err != nil {
		return false, err
	}
	before()
	// The producer span continues the event's stored trace context
	// (tracing.StartSend; none without a stored one), and the record carries
	// the span's context when the span is sampled, else the stored one as
	// it is (the same trace and decision, and no headers built twice).
	sctx, span := tracing.StartSend(ctx, p.topic, partition, e.traceparent, "", tracing.KeyOrderID.String(e.aggregateID),
		tracing.KeyEventID.String(e.eventID), tracing.KeyAggregateVersion.Int64(e.aggregateVersion))
	if span.SpanContext().IsSampled() && span.IsRecording() {
		tp, ts := tracing.Headers(sctx)
		r = e.recordTraced(p.topic, tp, ts)
		r.Partition = partition
	}
	// The produce context is not the run context: records already handed
	// over must reach Kafka during a graceful shutdown.
	p.client.Produce(context.WithoutCancel(ctx), r, func(r *kgo.Record, err error) {
		if err == nil {
			tracing.SetOffset(span, r.Offset)
		}
		tracing.End(span, err)
		if err != nil {
			p.fail(&produceError{fmt.Errorf("produce event %s (order %s, position %s) to %s[%d]: %w", e.eventID, e.aggregateID, e.pos, p.topic, partition, err)})
			return
		}
		p.m.published.Inc()
		if !e.committedAt.IsZero() {
			p.m.commitToAck.Observe(time.Since(e.committedAt).Seconds())
		}
		acked()
		p.release(weight)
	})
	return true, nil
}

// acquire waits for room for one more event of weight bytes: fewer than
// maxEvents in flight and their bytes plus weight within maxBytes, or
// nothing in flight (an event larger than maxBytes goes alone). While it
// waits it calls idle about every second; it returns the first produce
// error or ctx's.
func (p *publisher) acquire(ctx context.Context, idle func() error, weight int64) error {
	var tick *time.Ticker
	for !p.tryAcquire(weight) {
		if tick == nil {
			tick = time.NewTicker(time.Second)
			defer tick.Stop()
		}
		select {
		case <-p.freed:
		case <-p.failed:
			return p.err
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
			if idle != nil {
				if err := idle(); err != nil {
					return err
				}
			}
		}
	}
	if err := p.Err(); err != nil {
		p.release(weight)
		return err
	}
	return nil
}

// tryAcquire counts an event of weight bytes in flight if there is room.
func (p *publisher) tryAcquire(weight int64) bool {
	p.mu.Lock()
	if p.inFlight >= p.maxEvents || p.inFlight > 0 && p.inFlightBytes+weight > p.maxBytes {
		p.mu.Unlock()
		return false
	}
	p.inFlight++
	p.inFlightBytes += weight
	n, b := p.inFlight, p.inFlightBytes
	p.mu.Unlock()
	p.m.inFlight.Inc()
	p.m.inFlightBytes.Add(float64(weight))
	if p.onInFlight != nil {
		p.onInFlight(n, b)
	}
	return true
}

// release uncounts an event of weight bytes and wakes a waiting acquire.
func (p *publisher) release(weight int64) {
	p.mu.Lock()
	p.inFlight--
	p.inFlightBytes -= weight
	p.mu.Unlock()
	p.m.inFlight.Dec()
	p.m.inFlightBytes.Sub(float64(weight))
	select {
	case p.freed <- struct{}{}:
	default:
	}
}

// recordBytes is what r holds in memory beyond its fixed fields: key, value
// and headers.
func recordBytes(r *kgo.Record) int64 {
	n := len(r.Key) + len(r.Value)
	for _, h := range r.Headers {
		n += len(h.Key) + len(h.Value)
	}
	return int64(n)
}

// drain waits until every record handed over was acked (or one failed).
func (p *publisher) drain(ctx context.Context) error {
	if err := p.client.Flush(ctx); err != nil {
		return fmt.Errorf("flush producer: %w", err)
	}
	return p.Err()
}

// brokersOf returns the seed brokers a client was built with.
func brokersOf(cl *kgo.Client) []string {
	v := cl.OptValues(kgo.SeedBrokers)
	if len(v) == 1 {
		if s, ok := v[0].([]string); ok {
			return s
		}
	}
	return nil
}
