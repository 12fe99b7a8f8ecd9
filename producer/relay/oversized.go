package relay

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"
)

// ProducerBatchMaxBytes is the relay producer's batch limit
// (kgo.ProducerBatchMaxBytes, 1 MiB): franz-go refuses a larger record
// itself, whatever the topic allows.
const ProducerBatchMaxBytes = 1 << 20

// recordFraming bounds what a one-record batch adds to the record's key,
// value and header bytes: the 61-byte batch header and the record's varints.
const recordFraming = 128

// ErrOversized: an outbox event whose Kafka record is larger than the topic
// accepts; no retry can ever relay it. Run stops with an *OversizedError
// unless Config.ParkOversized.
var ErrOversized = errors.New("outbox event larger than the topic accepts")

// OversizedError names the outbox row that cannot be relayed for its size,
// and what to do. It wraps ErrOversized.
type OversizedError struct {
	OutboxID  int64
	EventID   string
	OrderID   string
	EventType string
	Version   int64
	Position  string
	Topic     string
	Size      int // bytes of key, value and headers
	Limit     int // the largest the topic and the producer accept, less framing
}

func (e *OversizedError) Unwrap() error { return ErrOversized }

func (e *OversizedError) Error() string {
	return fmt.Sprintf("outbox row id %d (event %s, %s v%d of order %s, position %s) is %d bytes as a Kafka record, over the %d bytes topic %s accepts: "+
		"Kafka refuses it on every attempt, so the relay cannot move past it. Either raise the topic's max.message.bytes above %d "+
		"(a record over the producer's 1 MiB batch limit needs a smaller event), or run the relay with --park-oversized: it keeps the event "+
		"and the order's later events in relay_parked_events (listed by `orderstream relay parked`) and goes on",
		e.OutboxID, e.EventID, e.EventType, e.Version, e.OrderID, e.Position, e.Size, e.Limit, e.Topic, e.Size+recordFraming)
}

// Reasons of relay_parked_events.reason.
const (
	ParkOversized       = "oversized"
	ParkBehindOversized = "behind_oversized"
)

// recordSize is the bytes of r that count against the limits: key, value,
// header keys and values.
func recordSize(r *kgo.Record) int {
	n := len(r.Key) + len(r.Value)
	for _, h := range r.Headers {
		n += len(h.Key) + len(h.Value)
	}
	return n
}

// recordLimit is the largest recordSize the relay produces to a topic whose
// max.message.bytes is maxMessageBytes (0: unknown): the smaller of it and
// the producer's batch limit, less framing. Sizes are compared before
// compression, so a record that only compression would bring under the
// topic's limit counts as too large.
func recordLimit(maxMessageBytes int64) int {
	limit := int64(ProducerBatchMaxBytes)
	if maxMessageBytes > 0 && maxMessageBytes < limit {
		limit = maxMessageBytes
	}
	return int(limit) - recordFraming
}

// oversized decides, before each record is produced, whether Kafka would
// refuse it for its size, and parks it (or stops the relay). Used from the
// publishing goroutine only.
type oversized struct {
	topic  string
	limit  int
	park   bool
	pool   *pgxpool.Pool
	orders map[string]bool // orders with a parked event: their later events are parked too
	parked prometheus.Counter
	log    *slog.Logger
}

// loadParkedOrders reads the orders that have parked events.
func loadParkedOrders(ctx context.Context, pool *pgxpool.Pool) (map[string]bool, error) {
	rows, err := pool.Query(ctx, `SELECT DISTINCT aggregate_id FROM relay_parked_events`)
	if err != nil {
		return nil, fmt.Errorf("read parked orders: %w", err)
	}
	defer rows.Close()
	out := map[string]bool{}
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, fmt.Errorf("read parked orders: %w", err)
		}
		out[id] = true
	}
	return out, rows.Err()
}

// check returns whether e (as record r) was parked instead of produced,
// or the *OversizedError that stops the relay. An event of an order that
// has a parked event is parked behind it, with or without --park-oversized:
// no read model may see the order's later events without the earlier one.
func (o *oversized) check(ctx context.Context, e *event, r *kgo.Record) (bool, error) {
	if o == nil {
		return false, nil
	}
	size := recordSize(r)
	reason := ParkBehindOversized
	if !o.orders[e.aggregateID] {
		if size <= o.limit {
			return false, nil
		}
		reason = ParkOversized
		if !o.park {
			return false, &OversizedError{OutboxID: e.outboxID, EventID: e.eventID, OrderID: e.aggregateID, EventType: e.eventType,
				Version: e.aggregateVersion, Position: e.pos.String(), Topic: o.topic, Size: size, Limit: o.limit}
		}
	}
	ictx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	_, err := o.pool.Exec(ictx, `INSERT INTO relay_parked_events
		(event_id, outbox_id, aggregate_id, aggregate_version, event_type, relay_position, size_bytes, limit_bytes, reason, envelope)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) ON CONFLICT (event_id) DO NOTHING`,
		e.eventID, e.outboxID, e.aggregateID, e.aggregateVersion, e.eventType, e.pos.String(), size, o.limit, reason, string(e.envelope))
	if err != nil {
		return false, fmt.Errorf("park outbox row id %d (event %s of order %s): %w", e.outboxID, e.eventID, e.aggregateID, err)
	}
	o.orders[e.aggregateID] = true
	o.parked.Inc()
	o.log.Warn("outbox event parked, not relayed: see `orderstream relay parked`", "reason", reason, "outbox_id", e.outboxID,
		"event_id", e.eventID, "order_id", e.aggregateID, "event_type", e.eventType, "aggregate_version", e.aggregateVersion,
		"size_bytes", size, "limit_bytes", o.limit)
	return true, nil
}

// Parked is one row of relay_parked_events.
type Parked struct {
	EventID          string    `json:"event_id"`
	OutboxID         int64     `json:"outbox_id"`
	OrderID          string    `json:"order_id"`
	AggregateVersion int64     `json:"aggregate_version"`
	EventType        string    `json:"event_type"`
	Position         string    `json:"relay_position"`
	SizeBytes        int       `json:"size_bytes"`
	LimitBytes       int       `json:"limit_bytes"`
	Reason           string    `json:"reason"`
	ParkedAt         time.Time `json:"parked_at"`
}

// ListParked returns every parked event, oldest first (the envelope stays
// in the table: SELECT envelope FROM relay_parked_events WHERE event_id = …).
func ListParked(ctx context.Context, pool *pgxpool.Pool) ([]Parked, error) {
	rows, err := pool.Query(ctx, `SELECT event_id, outbox_id, aggregate_id, aggregate_version, event_type, relay_position,
		size_bytes, limit_bytes, reason, parked_at FROM relay_parked_events ORDER BY parked_at, outbox_id`)
	if err != nil {
		return nil, fmt.Errorf("list parked events: %w", err)
	}
	defer rows.Close()
	var out []Parked
	for rows.Next() {
		var p Parked
		if err := rows.Scan(&p.EventID, &p.OutboxID, &p.OrderID, &p.AggregateVersion, &p.EventType, &p.Position,
			&p.SizeBytes, &p.LimitBytes, &p.Reason, &p.ParkedAt); err != nil {
			return nil, fmt.Errorf("list parked events: %w", err)
		}
		out = append(out, p)
	}
	return out, rows.Err()
}
