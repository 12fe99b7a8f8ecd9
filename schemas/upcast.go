package schemas

import (
	"errors"
	"fmt"

	jsonv2 "github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
)

// Versions of the event contract this build knows. A version is a whole set
// of schemas (schemas/v<N>/*.json: envelope, shared definitions and every
// event type); an event type whose shape did not change still gets the new
// version number, with an identity upcaster, so that one setting (the
// writers' --event-version) names what every event of a release looks like.
const (
	// OldestVersion is the first version; events of it stay in Kafka
	// forever (topics are never compacted) and are read through Upcasters.
	OldestVersion = 1
	// CurrentVersion is the version of the Go payload types, the one sinks
	// decode and the one the write side emits by default. History:
	//   - 1: the first contract.
	//   - 2: order.placed groups the buyer as customer {id, country} (was
	//     customer_id and country) and adds an optional channel; the other
	//     types keep their v1 shape.
	CurrentVersion = 2
)

// ErrNewerVersion is wrapped by Upcasters.Upcast for an event whose
// schema_version is newer than the versions the reading build knows: it was
// written by a newer writer than this consumer (a rolling upgrade done in the
// wrong order: writers before consumers). Consumers dead-letter it (strict
// runs stop on it); once the consumer is upgraded, `orderstream dlq replay`
// applies it.
var ErrNewerVersion = errors.New("schema version newer than this build knows")

// Upcaster turns the payload JSON of one version of an event type into the
// payload JSON of the next version. It is a pure function: same input, same
// output, no I/O; it may return its input when the shape did not change. Its
// error wraps ErrInvalidEvent when the input is not a payload of the version
// it reads.
type Upcaster func(payload []byte) ([]byte, error)

type step struct {
	eventType string
	from      int
}

// Upcasters is the chain of upcasters of this build: one per (event type,
// from version), each turning version N into N+1, so that an event of any
// known version reaches a reader as CurrentVersion. It is safe for
// concurrent use (it is never modified after NewUpcasters). The zero value
// has no upcaster and reads no version; use NewUpcasters.
type Upcasters struct {
	accept int // highest schema_version accepted
	steps  map[step]Upcaster
	down   map[step]Upcaster // from = the version produced, to from+1's payload
}

// NewUpcasters returns the registered chain of this build: every event type
// from OldestVersion to CurrentVersion (order.placed v1→v2 by placedV1toV2,
// the other types unchanged), and the writers' way back (Downcast).
func NewUpcasters() *Upcasters {
	u := &Upcasters{accept: CurrentVersion, steps: map[step]Upcaster{}, down: map[step]Upcaster{}}
	u.steps[step{TypeOrderPlaced, 1}] = placedV1toV2
	u.down[step{TypeOrderPlaced, 1}] = placedV2toV1
	for _, t := range []string{TypeOrderPaid, TypeOrderShipped, TypeOrderCancelled, TypeOrderRefunded} {
		u.steps[step{t, 1}] = sameShape
		u.down[step{t, 1}] = sameShape
	}
	return u
}

// ReadingUpTo returns a copy of u that refuses every schema_version above
// version with ErrNewerVersion, as a build that knows only versions up to
// it does; what it accepts is still upcast to CurrentVersion. It is how a
// test plays a consumer of an older release meeting newer events.
func (u *Upcasters) ReadingUpTo(version int) *Upcasters {
	c := *u
	c.accept = version
	return &c
}

// Has reports whether an upcaster from version from of eventType to the
// next version is registered.
func (u *Upcasters) Has(eventType string, from int) bool {
	_, ok := u.steps[step{eventType, from}]
	return ok
}

// Upcast returns e with its payload in the CurrentVersion shape and
// SchemaVersion = CurrentVersion, by applying the chain from e's version; e
// itself and the bytes it points to are not modified (events in Kafka are
// never rewritten). An event already at CurrentVersion comes back as it
// is. Errors: ErrNewerVersion for a version above what u reads,
// ErrUnknownEvent for a version below OldestVersion or a type without an
// upcaster from its version, ErrInvalidEvent for a payload its upcaster
// cannot read.
func (u *Upcasters) Upcast(e Envelope) (Envelope, error) {
	if e.SchemaVersion > u.accept {
		return e, fmt.Errorf("%s v%d (event %s): %w (reads up to v%d): upgrade this binary (a dead letter is then applied by `orderstream dlq replay`; a rebuild can run again)",
			e.EventType, e.SchemaVersion, e.EventID, ErrNewerVersion, u.accept)
	}
	for e.SchemaVersion < CurrentVersion {
		up, ok := u.steps[step{e.EventType, e.SchemaVersion}]
		if !ok {
			return e, fmt.Errorf("%s v%d (event %s): %w: no upcaster to v%d", e.EventType, e.SchemaVersion, e.EventID, ErrUnknownEvent, e.SchemaVersion+1)
		}
		out, err := up(e.Payload)
		if err != nil {
			return e, fmt.Errorf("upcast %s v%d of event %s: %w", e.EventType, e.SchemaVersion, e.EventID, err)
		}
		e.Payload, e.SchemaVersion = out, e.SchemaVersion+1
	}
	return e, nil
}

// Downcast returns e (a CurrentVersion envelope, as NewEnvelope makes it)
// with its payload in the shape of version to, for writers that must keep
// emitting an older version while consumers of an older release still run
// (--event-version). It refuses, wrapping ErrOutOfRange, an event holding a
// value the older version cannot carry (an order.placed with a channel for
// v1): silently dropping it would make the read models differ from the
// write side. to = CurrentVersion returns e as it is.
func (u *Upcasters) Downcast(e Envelope, to int) (Envelope, error) {
	if to < OldestVersion || to > CurrentVersion {
		return e, fmt.Errorf("event version %d: want %d to %d", to, OldestVersion, CurrentVersion)
	}
	for e.SchemaVersion > to {
		down, ok := u.down[step{e.EventType, e.SchemaVersion - 1}]
		if !ok {
			return e, fmt.Errorf("%s v%d (event %s): %w: no way back to v%d", e.EventType, e.SchemaVersion, e.EventID, ErrUnknownEvent, e.SchemaVersion-1)
		}
		out, err := down(e.Payload)
		if err != nil {
			return e, fmt.Errorf("write %s of order %s as v%d: %w", e.EventType, e.AggregateID, e.SchemaVersion-1, err)
		}
		e.Payload, e.SchemaVersion = out, e.SchemaVersion-1
	}
	return e, nil
}

// sameShape is the upcaster (and downcaster) of a type whose payload did
// not change between two versions.
func sameShape(payload []byte) ([]byte, error) { return payload, nil }

// placedV1 is order.placed v1 (schemas/v1/order.placed.json) as the
// upcaster reads it: the lines and the total are kept as raw JSON, copied
// byte for byte (they did not change), which keeps the upcast cheap.
type placedV1 struct {
	OrderNumber string         `json:"order_number"`
	Kind        string         `json:"kind"`
	CustomerID  string         `json:"customer_id,omitempty"`
	Country     string         `json:"country"`
	Currency    string         `json:"currency"`
	Lines       jsontext.Value `json:"lines"`
	Total       jsontext.Value `json:"total"`
}

// placedV2 is order.placed v2 with raw lines and total (see placedV1).
type placedV2 struct {
	OrderNumber string         `json:"order_number"`
	Kind        string         `json:"kind"`
	Customer    Customer       `json:"customer"`
	Channel     Channel        `json:"channel,omitempty"`
	Currency    string         `json:"currency"`
	Lines       jsontext.Value `json:"lines"`
	Total       jsontext.Value `json:"total"`
}

// placedV1toV2 moves customer_id and country into customer {id, country};
// channel stays absent (v1 did not know it). Everything else is copied.
func placedV1toV2(payload []byte) ([]byte, error) {
	var v1 placedV1
	if err := strictUnmarshal(payload, &v1); err != nil {
		return nil, fmt.Errorf("%w: not an order.placed v1 payload: %v", ErrInvalidEvent, err)
	}
	if len(v1.Lines) == 0 || len(v1.Total) == 0 || v1.Country == "" {
		return nil, fmt.Errorf("%w: order.placed v1 payload without lines, total or country", ErrInvalidEvent)
	}
	return jsonv2.Marshal(placedV2{OrderNumber: v1.OrderNumber, Kind: v1.Kind, Customer: Customer{ID: v1.CustomerID, Country: v1.Country},
		Currency: v1.Currency, Lines: v1.Lines, Total: v1.Total})
}

// placedV2toV1 is the writers' way back (Downcast): customer {id, country}
// becomes customer_id and country; a channel cannot be written as v1.
func placedV2toV1(payload []byte) ([]byte, error) {
	var v2 placedV2
	if err := strictUnmarshal(payload, &v2); err != nil {
		return nil, fmt.Errorf("%w: not an order.placed v2 payload: %v", ErrInvalidEvent, err)
	}
	if v2.Channel != "" {
		return nil, fmt.Errorf("channel %q: %w: order.placed v1 has no channel; write version 2 (--event-version 2) once every consumer reads it", v2.Channel, ErrOutOfRange)
	}
	return jsonv2.Marshal(placedV1{OrderNumber: v2.OrderNumber, Kind: v2.Kind, CustomerID: v2.Customer.ID, Country: v2.Customer.Country,
		Currency: v2.Currency, Lines: v2.Lines, Total: v2.Total})
}
