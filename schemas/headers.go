package schemas

import (
	"strconv"
	"time"
)

// Kafka record headers of an event: CloudEvents 1.0 Kafka protocol binding,
// binary mode (https://github.com/cloudevents/spec/blob/v1.0.2/cloudevents/bindings/kafka-protocol-binding.md),
// plus the W3C trace context and the order's version. The record's key is
// the aggregate id and its value the envelope JSON; the headers repeat what
// a consumer may need before it parses the value (routing, dead-lettering).
const (
	HeaderID               = "ce_id"             // event id (UUIDv7, canonical text)
	HeaderType             = "ce_type"           // event type, e.g. order.placed
	HeaderSource           = "ce_source"         // EventSource
	HeaderSpecVersion      = "ce_specversion"    // "1.0"
	HeaderTime             = "ce_time"           // occurred_at, RFC 3339 with nanoseconds, UTC
	HeaderSubject          = "ce_subject"        // aggregate id
	HeaderContentType      = "content-type"      // "application/json"
	HeaderTraceparent      = "traceparent"       // W3C traceparent; only when the event has one
	HeaderAggregateVersion = "aggregate_version" // aggregate_version, decimal
)

// EventSource is the ce_source of every event orderstream writes.
const EventSource = "/orderstream/producer"

// RecordFields are the values RecordHeaders puts in the headers of one
// event's record.
type RecordFields struct {
	EventID          string
	EventType        string
	AggregateID      string
	AggregateVersion int64
	OccurredAt       time.Time
	Traceparent      string // "" when the event carries none
}

// RecordHeaders appends the headers of the record of one event to dst and
// returns the result, in this order: ce_id, ce_type, ce_source,
// ce_specversion, ce_time, ce_subject, content-type, traceparent (only when
// set), aggregate_version. H is the Kafka client's header type (for
// franz-go, kgo.RecordHeader), so that this package imports no Kafka
// client. Every record of the events topic carries exactly these headers
// (the relay adds its own relay_position after them).
func RecordHeaders[H ~struct {
	Key   string
	Value []byte
}](dst []H, f RecordFields) []H {
	dst = append(dst,
		H{Key: HeaderID, Value: []byte(f.EventID)},
		H{Key: HeaderType, Value: []byte(f.EventType)},
		H{Key: HeaderSource, Value: []byte(EventSource)},
		H{Key: HeaderSpecVersion, Value: []byte("1.0")},
		H{Key: HeaderTime, Value: []byte(f.OccurredAt.UTC().Format(time.RFC3339Nano))},
		H{Key: HeaderSubject, Value: []byte(f.AggregateID)},
		H{Key: HeaderContentType, Value: []byte("application/json")},
	)
	if f.Traceparent != "" {
		dst = append(dst, H{Key: HeaderTraceparent, Value: []byte(f.Traceparent)})
	}
	return append(dst, H{Key: HeaderAggregateVersion, Value: strconv.AppendInt(nil, f.AggregateVersion, 10)})
}
