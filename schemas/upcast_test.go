package schemas_test

import (
	"encoding/json"
	"errors"
	"io/fs"
	"testing"

	"github.com/google/uuid"
	"github.com/orderstream/orderstream/schemas"
)

// placedV1JSON is an order.placed v1 payload as the write side of release 1
// wrote it.
const placedV1JSON = `{"order_number":"536365","kind":"sale","customer_id":"17850","country":"United Kingdom","currency":"GBP",` +
	`"lines":[{"line_no":1,"source_line":2,"stock_code":"85123A","description":"WHITE HANGING HEART T-LIGHT HOLDER","quantity":6,` +
	`"unit_price":{"amount":"2.55","currency":"GBP"},"invoiced_at":"2010-12-01T08:26:00Z"}],"total":{"amount":"15.3","currency":"GBP"}}`

func TestUpcasters(t *testing.T) {
	t.Parallel()
	guestV1 := `{"order_number":"C536379","kind":"credit_note","country":"EIRE","currency":"GBP","lines":[{"line_no":1,"stock_code":"D","description":"Discount","quantity":-1,"unit_price":{"amount":"27.5","currency":"GBP"},"invoiced_at":"2010-12-01T09:41:00Z"}],"total":{"amount":"-27.5","currency":"GBP"}}`
	paid := `{"amount":{"amount":"15.3","currency":"GBP"},"reference":"PAY-1"}`
	tests := []struct {
		name    string
		typ     string
		version int
		give    string
		want    string // payload JSON after the upcast; "" when wantErr
		wantErr error
	}{
		{name: "placed v1 moves the buyer into customer", typ: schemas.TypeOrderPlaced, version: 1, give: placedV1JSON,
			want: `{"order_number":"536365","kind":"sale","customer":{"id":"17850","country":"United Kingdom"},"currency":"GBP",` +
				`"lines":[{"line_no":1,"source_line":2,"stock_code":"85123A","description":"WHITE HANGING HEART T-LIGHT HOLDER","quantity":6,` +
				`"unit_price":{"amount":"2.55","currency":"GBP"},"invoiced_at":"2010-12-01T08:26:00Z"}],"total":{"amount":"15.3","currency":"GBP"}}`},
		{name: "placed v1 guest has a customer without id", typ: schemas.TypeOrderPlaced, version: 1, give: guestV1,
			want: `{"order_number":"C536379","kind":"credit_note","customer":{"country":"EIRE"},"currency":"GBP","lines":[{"line_no":1,"stock_code":"D","description":"Discount","quantity":-1,"unit_price":{"amount":"27.5","currency":"GBP"},"invoiced_at":"2010-12-01T09:41:00Z"}],"total":{"amount":"-27.5","currency":"GBP"}}`},
		{name: "placed v2 stays as it is", typ: schemas.TypeOrderPlaced, version: 2,
			give: `{"order_number":"1","kind":"sale","customer":{"country":"France"},"channel":"web","currency":"GBP","lines":[],"total":{"amount":"0","currency":"GBP"}}`,
			want: `{"order_number":"1","kind":"sale","customer":{"country":"France"},"channel":"web","currency":"GBP","lines":[],"total":{"amount":"0","currency":"GBP"}}`},
		{name: "paid v1 keeps its shape", typ: schemas.TypeOrderPaid, version: 1, give: paid, want: paid},
		{name: "placed v1 with a v2 member is poison", typ: schemas.TypeOrderPlaced, version: 1,
			give: `{"order_number":"1","kind":"sale","customer":{"country":"France"},"currency":"GBP","lines":[],"total":{}}`, wantErr: schemas.ErrInvalidEvent},
		{name: "placed v1 without country is poison", typ: schemas.TypeOrderPlaced, version: 1,
			give: `{"order_number":"1","kind":"sale","currency":"GBP","lines":[],"total":{}}`, wantErr: schemas.ErrInvalidEvent},
		{name: "a version newer than this build", typ: schemas.TypeOrderPaid, version: schemas.CurrentVersion + 1, give: paid, wantErr: schemas.ErrNewerVersion},
		{name: "an unknown type of an old version", typ: "order.exploded", version: 1, give: `{}`, wantErr: schemas.ErrUnknownEvent},
	}
	up := schemas.NewUpcasters()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			give := []byte(tt.give)
			e := schemas.Envelope{EventID: uuid.Must(uuid.NewV7()), EventType: tt.typ, SchemaVersion: tt.version, AggregateID: "o", AggregateVersion: 1, Payload: give}
			got, err := up.Upcast(e)
			if string(give) != tt.give {
				t.Fatalf("the input payload was modified: %s", give)
			}
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("Upcast error = %v, want %v", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.SchemaVersion != schemas.CurrentVersion || string(got.Payload) != tt.want {
				t.Fatalf("Upcast = v%d %s\nwant v%d %s", got.SchemaVersion, got.Payload, schemas.CurrentVersion, tt.want)
			}
			if _, err := got.Decode(); err != nil && tt.typ == schemas.TypeOrderPaid {
				t.Fatalf("upcast event does not decode: %v", err)
			}
		})
	}
}

// TestUpcastValidAgainstV2: the real v1 event, upcast, is a valid v2 event
// and decodes to the buyer it had.
func TestUpcastValidAgainstV2(t *testing.T) {
	t.Parallel()
	v := newValidator(t)
	e := envelope(t, placed())
	e.SchemaVersion, e.Payload = 1, []byte(placedV1JSON)
	b, err := json.Marshal(e)
	if err != nil {
		t.Fatal(err)
	}
	if err := v.Validate(b); err != nil {
		t.Fatalf("v1 event invalid: %v", err)
	}
	up, err := schemas.NewUpcasters().Upcast(e)
	if err != nil {
		t.Fatal(err)
	}
	if b, err = json.Marshal(up); err != nil {
		t.Fatal(err)
	}
	if err := v.Validate(b); err != nil {
		t.Fatalf("upcast event invalid against v2: %v", err)
	}
	p, err := up.Decode()
	if err != nil {
		t.Fatal(err)
	}
	if got := p.(*schemas.OrderPlaced).Customer; got != (schemas.Customer{ID: "17850", Country: "United Kingdom"}) {
		t.Fatalf("customer = %+v", got)
	}
	if _, err := e.Decode(); !errors.Is(err, schemas.ErrUnknownEvent) {
		t.Fatalf("Decode of a v1 event without upcast = %v, want ErrUnknownEvent", err)
	}
}

// TestDowncastRoundTrip: every event a v2 writer makes, written as v1, is a
// valid v1 event and upcasts back to what the v2 writer wrote; a channel,
// which v1 cannot carry, is refused.
func TestDowncastRoundTrip(t *testing.T) {
	t.Parallel()
	v := newValidator(t)
	up := schemas.NewUpcasters()
	for typ, p := range valid() {
		t.Run(typ, func(t *testing.T) {
			e := envelope(t, p)
			old, err := up.Downcast(e, 1)
			if err != nil {
				t.Fatal(err)
			}
			b, err := v.Marshal(old)
			if err != nil || old.SchemaVersion != 1 {
				t.Fatalf("v1 event: version %d, %v", old.SchemaVersion, err)
			}
			back, err := up.Upcast(old)
			if err != nil {
				t.Fatal(err)
			}
			want, _ := e.Decode()
			got, err := back.Decode()
			if err != nil {
				t.Fatal(err)
			}
			wj, _ := json.Marshal(want)
			gj, _ := json.Marshal(got)
			if string(wj) != string(gj) {
				t.Fatalf("round trip through v1 (%s)\n got %s\nwant %s", b, gj, wj)
			}
		})
	}
	withChannel := placed()
	withChannel.Channel = schemas.ChannelPhone
	if _, err := up.Downcast(envelope(t, withChannel), 1); !errors.Is(err, schemas.ErrOutOfRange) {
		t.Fatalf("downcast of a placed with a channel = %v, want ErrOutOfRange", err)
	}
	if _, err := up.Downcast(envelope(t, placed()), 0); err == nil {
		t.Fatal("downcast to v0 accepted")
	}
}

// TestReadingUpTo: a build that reads only v1 refuses v2 events as newer
// and still upcasts the v1 events it accepts.
func TestReadingUpTo(t *testing.T) {
	t.Parallel()
	old := schemas.NewUpcasters().ReadingUpTo(1)
	e := envelope(t, placed())
	if _, err := old.Upcast(e); !errors.Is(err, schemas.ErrNewerVersion) {
		t.Fatalf("v2 event read by a v1 build: %v, want ErrNewerVersion", err)
	}
	e.SchemaVersion, e.Payload = 1, []byte(placedV1JSON)
	if got, err := old.Upcast(e); err != nil || got.SchemaVersion != schemas.CurrentVersion {
		t.Fatalf("v1 event read by a v1 build: v%d, %v", got.SchemaVersion, err)
	}
}

// TestEmbeddedSchemasFiles: every version directory holds the envelope,
// the definitions and every event type.
func TestEmbeddedSchemasFiles(t *testing.T) {
	t.Parallel()
	for v := schemas.OldestVersion; v <= schemas.CurrentVersion; v++ {
		for _, name := range []string{"envelope", "defs", schemas.TypeOrderPlaced, schemas.TypeOrderPaid, schemas.TypeOrderShipped, schemas.TypeOrderCancelled, schemas.TypeOrderRefunded} {
			if _, err := fs.Stat(schemas.Files(), "v"+string(rune('0'+v))+"/"+name+".json"); err != nil {
				t.Errorf("v%d: %v", v, err)
			}
		}
	}
}
