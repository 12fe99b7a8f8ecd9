package schemas

import (
	"bytes"
	"encoding/json"
	"fmt"
	"time"
	"unicode/utf8"

	jsonv2 "github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
	"github.com/google/uuid"
	"github.com/shopspring/decimal"
)

// AggregateOrder is the aggregate_type of every order event.
const AggregateOrder = "order"

// Envelope is the outer shape of every event, as stored in the outbox and as
// the value of every Kafka record on the orders topic (schemas/v<N>/envelope.json,
// the same shape in every version).
//
// Fields:
//   - EventID: UUIDv7 (RFC 9562), unique per event; consumers use it for
//     idempotency where the aggregate version is not enough.
//   - EventType / SchemaVersion: select the payload schema ("order.placed", 1).
//   - AggregateType / AggregateID: the aggregate the event belongs to; the
//     Kafka key is AggregateID, so all events of one order share a partition.
//   - AggregateVersion: 1, 2, 3 … per aggregate with no gaps; the version the
//     aggregate has after this event. Read models use it as the document
//     version (never the Kafka offset).
//   - OccurredAt: business time in UTC (for imported documents, the invoice
//     time converted from Europe/London).
//   - RecordedAt: when the write side recorded the event, UTC.
//   - CorrelationID / CausationID: the request that started the work and the
//     message that caused this event (both free-form ids, often UUIDs).
//   - Traceparent: W3C Trace Context header value (00-<trace>-<span>-<flags>).
//   - Payload: the event body, shape fixed by EventType and SchemaVersion.
type Envelope struct {
	EventID          uuid.UUID       `json:"event_id"`
	EventType        string          `json:"event_type"`
	SchemaVersion    int             `json:"schema_version"`
	AggregateType    string          `json:"aggregate_type"`
	AggregateID      string          `json:"aggregate_id"`
	AggregateVersion int64           `json:"aggregate_version"`
	OccurredAt       time.Time       `json:"occurred_at"`
	RecordedAt       time.Time       `json:"recorded_at"`
	CorrelationID    string          `json:"correlation_id,omitempty"`
	CausationID      string          `json:"causation_id,omitempty"`
	Traceparent      string          `json:"traceparent,omitempty"`
	Payload          json.RawMessage `json:"payload"`
}

// Metadata carries the request context copied into every envelope a command
// produces. All fields are optional.
type Metadata struct {
	CorrelationID string
	CausationID   string
	Traceparent   string
}

// NewEnvelope wraps payload p as the event at version of aggregate id.
// OccurredAt is converted to UTC; RecordedAt is now in UTC. The event id is a
// fresh UUIDv7.
func NewEnvelope(id string, version int64, occurredAt time.Time, p Payload, md Metadata) (Envelope, error) {
	body, err := encodePayload(p)
	if err != nil {
		return Envelope{}, fmt.Errorf("encode %s payload: %w", p.EventType(), err)
	}
	eventID, err := uuid.NewV7()
	if err != nil {
		return Envelope{}, fmt.Errorf("new event id: %w", err)
	}
	return Envelope{
		EventID:          eventID,
		EventType:        p.EventType(),
		SchemaVersion:    p.SchemaVersion(),
		AggregateType:    AggregateOrder,
		AggregateID:      id,
		AggregateVersion: version,
		OccurredAt:       occurredAt.UTC(),
		RecordedAt:       time.Now().UTC(),
		CorrelationID:    md.CorrelationID,
		CausationID:      md.CausationID,
		Traceparent:      md.Traceparent,
		Payload:          body,
	}, nil
}

// Decode unmarshals the payload of e into its Go type (one of the *Order…
// types of this package, the CurrentVersion shape). It fails with
// ErrUnknownEvent for an event type or schema version other than those (an
// older version must go through Upcasters.Upcast first; the consumer runtime
// does that before a sink sees the event), and with a wrapped JSON error for
// a payload of the wrong shape. Decode does not run JSON Schema validation;
// use Validator.Validate for that.
func (e Envelope) Decode() (Payload, error) {
	var p Payload
	switch {
	case e.SchemaVersion != CurrentVersion:
		return nil, fmt.Errorf("event %s: %w: %s v%d (this build reads v%d; older versions are upcast first)", e.EventID, ErrUnknownEvent, e.EventType, e.SchemaVersion, CurrentVersion)
	case e.EventType == TypeOrderPlaced:
		p = &OrderPlaced{}
	case e.EventType == TypeOrderPaid:
		p = &OrderPaid{}
	case e.EventType == TypeOrderShipped:
		p = &OrderShipped{}
	case e.EventType == TypeOrderCancelled:
		p = &OrderCancelled{}
	case e.EventType == TypeOrderRefunded:
		p = &OrderRefunded{}
	default:
		return nil, fmt.Errorf("event %s: %w: %s v%d", e.EventID, ErrUnknownEvent, e.EventType, e.SchemaVersion)
	}
	if err := strictUnmarshal(e.Payload, p); err != nil {
		return nil, fmt.Errorf("decode %s v%d payload of event %s: %w: %v", e.EventType, e.SchemaVersion, e.EventID, ErrInvalidEvent, err)
	}
	return p, nil
}

// strictUnmarshal decodes one JSON value into v, refusing unknown fields,
// duplicate member names, invalid UTF-8 and trailing data: a payload that
// drifted from its schema version is poison, not something to half-read.
// Member names match exactly (case-sensitive), as the JSON Schemas name them.
// It uses the JSON v2 decoder (github.com/go-json-experiment/json, the
// prototype of encoding/json/v2): about twice as fast as encoding/json with a
// third of the allocations, which consumers pay on every record.
func strictUnmarshal(b []byte, v any) error {
	return jsonv2.Unmarshal(b, v, strictOptions)
}

var strictOptions = jsonv2.JoinOptions(
	jsonv2.RejectUnknownMembers(true),
	jsonv2.WithUnmarshalers(jsonv2.UnmarshalFromFunc(unmarshalDecimal)),
)

// unmarshalDecimal reads a decimal string ("-12.345") into d: the shape every
// amount has in the schemas (pattern ^-?[0-9]+(\.[0-9]+)?$). A JSON number,
// an exponent or any other character is refused.
func unmarshalDecimal(dec *jsontext.Decoder, d *decimal.Decimal) error {
	if k := dec.PeekKind(); k != '"' {
		return fmt.Errorf("decimal amount: want a JSON string, got %s", k)
	}
	raw, err := dec.ReadValue()
	if err != nil {
		return err
	}
	s := []byte(raw[1 : len(raw)-1])
	if bytes.IndexByte(s, '\\') >= 0 {
		if s, err = jsontext.AppendUnquote(nil, raw); err != nil {
			return err
		}
	}
	v, ok := parseDecimal(s)
	if !ok {
		return fmt.Errorf("decimal amount %s: want digits with an optional sign and fraction", raw)
	}
	*d = v
	return nil
}

// parseDecimal parses s (the unescaped content of a JSON string) when it matches ^-?[0-9]+(\.[0-9]+)?$. Up to 18 digits it
// builds the coefficient itself (no string, one big.Int); longer amounts go
// through decimal.NewFromString.
func parseDecimal(s []byte) (decimal.Decimal, bool) {
	digits := s
	neg := len(digits) > 0 && digits[0] == '-'
	if neg {
		digits = digits[1:]
	}
	var coef int64
	n, frac, dot := 0, 0, false
	for i, c := range digits {
		switch {
		case c >= '0' && c <= '9':
			coef = coef*10 + int64(c-'0') // wraps past 18 digits: unused then
			n++
			if dot {
				frac++
			}
		case c == '.' && !dot && i > 0 && i < len(digits)-1:
			dot = true
		default:
			return decimal.Decimal{}, false
		}
	}
	if n == 0 {
		return decimal.Decimal{}, false
	}
	if n > 18 {
		v, err := decimal.NewFromString(string(s))
		return v, err == nil
	}
	if neg {
		coef = -coef
	}
	return decimal.New(coef, int32(-frac)), true
}

// MaxAggregateID is the longest aggregate_id, in characters, of the
// envelope schema (maxLength): 512 bytes at most in UTF-8, the search
// engine's limit for a document id.
const MaxAggregateID = 128

// ParseEnvelope decodes a serialized envelope (a Kafka record value or an
// outbox row) strictly: unknown fields are refused, and event_id,
// event_type, schema_version >= 1, aggregate_type, aggregate_id and
// aggregate_version >= 1 are required; an aggregate_id is at most
// MaxAggregateID characters. The payload stays raw (see Decode). It is the consumers'
// cheap check; the full JSON Schema check (Validator) runs on the write side.
func ParseEnvelope(b []byte) (Envelope, error) {
	var e Envelope
	if err := strictUnmarshal(b, &e); err != nil {
		return Envelope{}, fmt.Errorf("decode event envelope: %w: %v", ErrInvalidEvent, err)
	}
	if e.EventID == uuid.Nil || e.EventType == "" || e.SchemaVersion < 1 || e.AggregateType == "" || e.AggregateID == "" || e.AggregateVersion < 1 || len(e.Payload) == 0 {
		return Envelope{}, fmt.Errorf("decode event envelope: %w: event_id, event_type, schema_version >= 1, aggregate_type, aggregate_id, aggregate_version >= 1 and payload are required", ErrInvalidEvent)
	}
	if n := utf8.RuneCountInString(e.AggregateID); n > MaxAggregateID {
		return Envelope{}, fmt.Errorf("decode event envelope: %w: aggregate_id of %d characters: want at most %d", ErrInvalidEvent, n, MaxAggregateID)
	}
	return e, nil
}
