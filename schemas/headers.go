package schemas

import (
	"strconv"
	"time"
)

// Kafka record headers of an event: CloudEvents 1.0 Kafka protocol binding,
// binary mode (https://github.com/cloudevents/spec/blob/v1.0.2/cloudevents/bindings/kafka-protocol-binding.md),
// plus the W3C trace context (the CloudEvents distributed-tracing extension,
// https://github.com/cloudevents/spec/blob/v1.0.2/cloudevents/extensions/distributed-tracing.md)
// and the order's version. The record's key is
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
	HeaderTracestate       = "tracestate"        // W3C tracestate; only when the relay's span has one
	HeaderAggregateVersion = "aggregate_version" // aggregate_version, decimal
	HeaderDataSchema       = "ce_dataschema"     // URI of the payload's JSON Schema (DataSchema)
	HeaderSchemaVersion    = "schema_version"    // the envelope's schema_version, decimal
)

// DataSchema returns the URI of the JSON Schema of eventType at version, as
// the embedded files name it ($id): e.g.
// https://orderstream.dev/schemas/v2/order.placed.json. It is the
// CloudEvents dataschema attribute of the event's record.
func DataSchema(eventType string, version int) string {
	return schemaBase + "v" + strconv.Itoa(version) + "/" + eventType + ".json"
}

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
	SchemaVersion    int    // the envelope's schema_version; 0 = not known (no ce_dataschema, schema_version)
	Tracestate       string // "" when there is none
}

// RecordHeaders appends the headers of the record of one event to dst and
// returns the result, in this order: ce_id, ce_type, ce_source,
// ce_specversion, ce_time, ce_subject, content-type, traceparent and
// tracestate (each only when set), aggregate_version, then ce_dataschema
// and schema_version (only when SchemaVersion is set). A consumer can tell
// the version of an event from the headers alone, before it parses the
// value. H is the Kafka client's header type (for
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
	if f.Tracestate != "" {
		dst = append(dst, H{Key: HeaderTracestate, Value: []byte(f.Tracestate)})
	}
	dst = append(dst, H{Key: HeaderAggregateVersion, Value: strconv.AppendInt(nil, f.AggregateVersion, 10)})
	if f.SchemaVersion > 0 {
		dst = append(dst,
			H{Key: HeaderDataSchema, Value: []byte(DataSchema(f.EventType, f.SchemaVersion))},
			H{Key: HeaderSchemaVersion, Value: strconv.AppendInt(nil, int64(f.SchemaVersion), 10)})
	}
	return dst
}
