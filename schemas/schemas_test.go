package schemas_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/orderstream/orderstream/schemas"
	"github.com/shopspring/decimal"
)

var at = time.Date(2010, 12, 1, 8, 26, 0, 0, time.UTC)

func gbp(s string) schemas.Money {
	return schemas.NewMoney(decimal.RequireFromString(s), schemas.CurrencyGBP)
}

func placed() *schemas.OrderPlaced {
	return &schemas.OrderPlaced{
		OrderNumber: "536365", Kind: schemas.KindSale, Customer: schemas.Customer{ID: "17850", Country: "United Kingdom"}, Currency: "GBP",
		Lines: []schemas.Line{
			{LineNo: 1, SourceLine: 2, StockCode: "85123A", Description: "WHITE HANGING HEART T-LIGHT HOLDER", Quantity: 6, UnitPrice: gbp("2.55"), InvoicedAt: at},
			{LineNo: 2, StockCode: "POST", Description: "", Quantity: 3, UnitPrice: gbp("0.001"), InvoicedAt: at},
		},
		Total: gbp("15.303"),
	}
}

// valid returns one valid payload of every event type.
func valid() map[string]schemas.Payload {
	return map[string]schemas.Payload{
		schemas.TypeOrderPlaced:    placed(),
		schemas.TypeOrderPaid:      &schemas.OrderPaid{Amount: gbp("15.303"), Reference: "PAY-1"},
		schemas.TypeOrderShipped:   &schemas.OrderShipped{Carrier: "DHL", TrackingNumber: "1Z999"},
		schemas.TypeOrderCancelled: &schemas.OrderCancelled{Reason: "customer asked"},
		schemas.TypeOrderRefunded:  &schemas.OrderRefunded{Amount: gbp("0"), Reason: "return"},
	}
}

func envelope(t *testing.T, p schemas.Payload) schemas.Envelope {
	t.Helper()
	e, err := schemas.NewEnvelope("0f8fad5b-d9cb-569f-a165-70867728950e", 1, at.In(time.FixedZone("BST", 3600)), p,
		schemas.Metadata{CorrelationID: "c-1", CausationID: "invoice:536365", Traceparent: "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func newValidator(t *testing.T) *schemas.Validator {
	t.Helper()
	v, err := schemas.NewValidator()
	if err != nil {
		t.Fatalf("embedded schemas do not compile: %v", err)
	}
	return v
}

func TestValidEventsPass(t *testing.T) {
	t.Parallel()
	v := newValidator(t)
	for typ, p := range valid() {
		t.Run(typ, func(t *testing.T) {
			e := envelope(t, p)
			if e.EventType != typ || e.SchemaVersion != schemas.CurrentVersion || e.OccurredAt.Location() != time.UTC || !e.OccurredAt.Equal(at) {
				t.Errorf("envelope = %+v", e)
			}
			b, err := v.Marshal(e)
			if err != nil {
				t.Fatalf("valid %s refused: %v", typ, err)
			}
			if err := v.Validate(b); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// mutate decodes b (numbers kept as written), applies fn and re-encodes.
func mutate(t *testing.T, b []byte, fn func(m map[string]any)) []byte {
	t.Helper()
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	var m map[string]any
	if err := d.Decode(&m); err != nil {
		t.Fatal(err)
	}
	fn(m)
	out, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func obj(m map[string]any, path ...any) map[string]any {
	var cur any = m
	for _, p := range path {
		switch k := p.(type) {
		case string:
			cur = cur.(map[string]any)[k]
		case int:
			cur = cur.([]any)[k]
		}
	}
	return cur.(map[string]any)
}

func TestInvalidEventsRejected(t *testing.T) {
	t.Parallel()
	v := newValidator(t)
	placedJSON, err := json.Marshal(envelope(t, placed()))
	if err != nil {
		t.Fatal(err)
	}
	paidJSON, err := json.Marshal(envelope(t, &schemas.OrderPaid{Amount: gbp("15.303")}))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		give    []byte
		wantErr error
	}{
		{"total as a JSON number", mutate(t, placedJSON, func(m map[string]any) { obj(m, "payload", "total")["amount"] = json.Number("15.303") }), schemas.ErrInvalidEvent},
		{"unit price as a JSON number", mutate(t, placedJSON, func(m map[string]any) {
			obj(m, "payload", "lines", 0, "unit_price")["amount"] = json.Number("2.55")
		}), schemas.ErrInvalidEvent},
		{"paid amount as a JSON number", mutate(t, paidJSON, func(m map[string]any) { obj(m, "payload", "amount")["amount"] = 15.303 }), schemas.ErrInvalidEvent},
		{"amount in exponent form", mutate(t, paidJSON, func(m map[string]any) { obj(m, "payload", "amount")["amount"] = "1.5303e1" }), schemas.ErrInvalidEvent},
		{"negative paid amount", mutate(t, paidJSON, func(m map[string]any) { obj(m, "payload", "amount")["amount"] = "-1" }), schemas.ErrInvalidEvent},
		{"lower-case currency", mutate(t, paidJSON, func(m map[string]any) { obj(m, "payload", "amount")["currency"] = "gbp" }), schemas.ErrInvalidEvent},
		{"occurred_at not UTC", mutate(t, placedJSON, func(m map[string]any) { m["occurred_at"] = "2010-12-01T09:26:00+01:00" }), schemas.ErrInvalidEvent},
		{"recorded_at without zone", mutate(t, placedJSON, func(m map[string]any) { m["recorded_at"] = "2010-12-01T08:26:00" }), schemas.ErrInvalidEvent},
		{"line time not UTC", mutate(t, placedJSON, func(m map[string]any) {
			obj(m, "payload", "lines", 1)["invoiced_at"] = "2010-12-01T09:26:00+01:00"
		}), schemas.ErrInvalidEvent},
		{"not a date", mutate(t, placedJSON, func(m map[string]any) { m["occurred_at"] = "2010-13-01T08:26:00Z" }), schemas.ErrInvalidEvent},
		{"unknown event type", mutate(t, placedJSON, func(m map[string]any) { m["event_type"] = "order.lost" }), schemas.ErrInvalidEvent},
		{"unknown schema version", mutate(t, placedJSON, func(m map[string]any) { m["schema_version"] = schemas.CurrentVersion + 1 }), schemas.ErrUnknownEvent},
		{"extra envelope field", mutate(t, placedJSON, func(m map[string]any) { m["partition"] = 3 }), schemas.ErrInvalidEvent},
		{"extra payload field", mutate(t, placedJSON, func(m map[string]any) { obj(m, "payload")["discount"] = "1.00" }), schemas.ErrInvalidEvent},
		{"extra line field", mutate(t, placedJSON, func(m map[string]any) { obj(m, "payload", "lines", 0)["vat"] = "0.20" }), schemas.ErrInvalidEvent},
		{"extra money field", mutate(t, paidJSON, func(m map[string]any) { obj(m, "payload", "amount")["scale"] = 3 }), schemas.ErrInvalidEvent},
		{"payload of another type", mutate(t, paidJSON, func(m map[string]any) { m["event_type"] = schemas.TypeOrderPlaced }), schemas.ErrInvalidEvent},
		{"no lines", mutate(t, placedJSON, func(m map[string]any) { obj(m, "payload")["lines"] = []any{} }), schemas.ErrInvalidEvent},
		{"fractional quantity", mutate(t, placedJSON, func(m map[string]any) { obj(m, "payload", "lines", 0)["quantity"] = 1.5 }), schemas.ErrInvalidEvent},
		{"unknown kind", mutate(t, placedJSON, func(m map[string]any) { obj(m, "payload")["kind"] = "invoice" }), schemas.ErrInvalidEvent},
		{"version 0", mutate(t, placedJSON, func(m map[string]any) { m["aggregate_version"] = 0 }), schemas.ErrInvalidEvent},
		{"event id not UUIDv7", mutate(t, placedJSON, func(m map[string]any) { m["event_id"] = "0f8fad5b-d9cb-469f-a165-70867728950e" }), schemas.ErrInvalidEvent},
		{"missing payload", mutate(t, placedJSON, func(m map[string]any) { delete(m, "payload") }), schemas.ErrInvalidEvent},
		{"not JSON", []byte(`{"event_type":`), schemas.ErrInvalidEvent},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := v.Validate(tt.give)
			if !errors.Is(err, tt.wantErr) {
				t.Errorf("err = %v, want %v", err, tt.wantErr)
			}
		})
	}
}

func TestMarshalRefusesInvalid(t *testing.T) {
	t.Parallel()
	v := newValidator(t)
	e := envelope(t, &schemas.OrderPaid{Amount: gbp("-1")})
	if _, err := v.Marshal(e); !errors.Is(err, schemas.ErrInvalidEvent) || !strings.Contains(err.Error(), e.AggregateID) {
		t.Errorf("err = %v, want ErrInvalidEvent naming the order", err)
	}
}

func TestDecodeRoundTrip(t *testing.T) {
	t.Parallel()
	for typ, p := range valid() {
		t.Run(typ, func(t *testing.T) {
			b, err := json.Marshal(envelope(t, p))
			if err != nil {
				t.Fatal(err)
			}
			e, err := schemas.ParseEnvelope(b)
			if err != nil {
				t.Fatal(err)
			}
			got, err := e.Decode()
			if err != nil {
				t.Fatal(err)
			}
			gb, _ := json.Marshal(got)
			wb, _ := json.Marshal(p)
			if !bytes.Equal(gb, wb) {
				t.Errorf("round trip:\n got %s\nwant %s", gb, wb)
			}
		})
	}
}

func TestDecodeUnknown(t *testing.T) {
	t.Parallel()
	e := schemas.Envelope{EventType: "order.lost", SchemaVersion: 1, AggregateID: "x", AggregateVersion: 1}
	if _, err := e.Decode(); !errors.Is(err, schemas.ErrUnknownEvent) {
		t.Errorf("err = %v, want ErrUnknownEvent", err)
	}
	e = schemas.Envelope{EventType: schemas.TypeOrderPaid, SchemaVersion: schemas.CurrentVersion + 1, AggregateID: "x", AggregateVersion: 1}
	if _, err := e.Decode(); !errors.Is(err, schemas.ErrUnknownEvent) {
		t.Errorf("err = %v, want ErrUnknownEvent", err)
	}
	if _, err := schemas.ParseEnvelope([]byte(`{"event_type":"order.paid","aggregate_id":"x","aggregate_version":0}`)); !errors.Is(err, schemas.ErrInvalidEvent) {
		t.Errorf("ParseEnvelope accepted version 0: %v", err)
	}
}

// TestMoneyExact checks that amounts survive the JSON round trip exactly
// and that sums are exact where binary floating point drifts.
func TestMoneyExact(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		give func() schemas.Money
		want string
	}{
		{"0.001 × 3", func() schemas.Money {
			return schemas.Line{Quantity: 3, UnitPrice: gbp("0.001")}.Amount()
		}, "0.003"},
		{"Σ 1000 × 0.1", func() schemas.Money {
			s := gbp("0")
			for range 1000 {
				var err error
				if s, err = s.Add(gbp("0.1")); err != nil {
					panic(err)
				}
			}
			return s
		}, "100"},
		{"0.1 + 0.2", func() schemas.Money {
			s, _ := gbp("0.1").Add(gbp("0.2"))
			return s
		}, "0.3"},
		{"net of the real file", func() schemas.Money { return gbp("9747747.934") }, "9747747.934"},
		{"negative", func() schemas.Money { return gbp("27.50").Neg() }, "-27.5"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			m := tt.give()
			want := gbp(tt.want)
			if !m.Equal(want) {
				t.Fatalf("got %s, want %s", m, want)
			}
			e := envelope(t, &schemas.OrderRefunded{Amount: m})
			b, err := json.Marshal(e)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Contains(b, []byte(`"amount":"`)) {
				t.Fatalf("amount not encoded as a string: %s", b)
			}
			back, err := schemas.ParseEnvelope(b)
			if err != nil {
				t.Fatal(err)
			}
			p, err := back.Decode()
			if err != nil {
				t.Fatal(err)
			}
			if got := p.(*schemas.OrderRefunded).Amount; !got.Equal(want) || got.Amount.String() != want.Amount.String() {
				t.Errorf("decoded %s, want exactly %s", got, want)
			}
		})
	}
	if _, err := gbp("1").Add(schemas.NewMoney(decimal.NewFromInt(1), "EUR")); !errors.Is(err, schemas.ErrCurrencyMismatch) {
		t.Errorf("GBP + EUR: err = %v, want ErrCurrencyMismatch", err)
	}
}

func TestKindValid(t *testing.T) {
	t.Parallel()
	for _, k := range []schemas.Kind{schemas.KindSale, schemas.KindCreditNote, schemas.KindAdjustment} {
		if !k.Valid() {
			t.Errorf("%q not valid", k)
		}
	}
	for _, k := range []schemas.Kind{"", "invoice", "Sale"} {
		if k.Valid() {
			t.Errorf("%q valid", k)
		}
	}
}

// TestDecodeStrict checks what the consumers' decoder (ParseEnvelope, then
// Decode) refuses without the JSON Schema pass: drift that would otherwise be
// half-read.
func TestDecodeStrict(t *testing.T) {
	t.Parallel()
	placedJSON, err := json.Marshal(envelope(t, placed()))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		give []byte
	}{
		{"extra envelope field", mutate(t, placedJSON, func(m map[string]any) { m["partition"] = 3 })},
		{"extra payload field", mutate(t, placedJSON, func(m map[string]any) { obj(m, "payload")["discount"] = "1.00" })},
		{"extra line field", mutate(t, placedJSON, func(m map[string]any) { obj(m, "payload", "lines", 0)["vat"] = "0.20" })},
		{"amount as a JSON number", mutate(t, placedJSON, func(m map[string]any) { obj(m, "payload", "total")["amount"] = json.Number("15.303") })},
		{"amount in exponent form", mutate(t, placedJSON, func(m map[string]any) { obj(m, "payload", "total")["amount"] = "1.5303e1" })},
		{"amount with a plus sign", mutate(t, placedJSON, func(m map[string]any) { obj(m, "payload", "total")["amount"] = "+15.303" })},
		{"amount ending in a dot", mutate(t, placedJSON, func(m map[string]any) { obj(m, "payload", "total")["amount"] = "15." })},
		{"member name in another case", bytes.Replace(placedJSON, []byte(`"order_number"`), []byte(`"Order_Number"`), 1)},
		{"duplicate member", bytes.Replace(placedJSON, []byte(`"kind":`), []byte(`"kind":"sale","kind":`), 1)},
		{"trailing data", append(append([]byte{}, placedJSON...), []byte(` {}`)...)},
		{"invalid UTF-8", bytes.Replace(placedJSON, []byte(`"United Kingdom"`), []byte("\"United \xff\""), 1)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e, err := schemas.ParseEnvelope(tt.give)
			if err == nil {
				_, err = e.Decode()
			}
			if !errors.Is(err, schemas.ErrInvalidEvent) {
				t.Errorf("err = %v, want ErrInvalidEvent", err)
			}
		})
	}
	// The unchanged event decodes: the cases above fail for their change.
	e, err := schemas.ParseEnvelope(placedJSON)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.Decode(); err != nil {
		t.Fatal(err)
	}
	// An amount written with JSON escapes is the same string.
	escaped := bytes.Replace(placedJSON, []byte(`"amount":"15.303"`), []byte(`"amount":"\u0031\u0035.303"`), 1)
	if bytes.Equal(escaped, placedJSON) {
		t.Fatal("test event has no total of 15.303")
	}
	if e, err = schemas.ParseEnvelope(escaped); err != nil {
		t.Fatal(err)
	}
	p, err := e.Decode()
	if err != nil {
		t.Fatalf("escaped amount: %v", err)
	}
	if got := p.(*schemas.OrderPlaced).Total.Amount.String(); got != "15.303" {
		t.Errorf("escaped total = %s, want 15.303", got)
	}
}

// paidEnvelopeMap returns an order.paid envelope serialized, and as a map
// of its members to change and serialize again.
func paidEnvelopeMap(t *testing.T) ([]byte, map[string]any) {
	t.Helper()
	b, err := json.Marshal(envelope(t, &schemas.OrderPaid{Amount: gbp("1")}))
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return b, m
}

// TestParseEnvelopeRequiresAggregateType: aggregate_type is required by
// every envelope schema; an envelope without it (produced to the topic by
// hand) is invalid for every reader alike, not applied by one read model
// and rejected by the other.
func TestParseEnvelopeRequiresAggregateType(t *testing.T) {
	t.Parallel()
	b, m := paidEnvelopeMap(t)
	if _, err := schemas.ParseEnvelope(b); err != nil {
		t.Fatalf("a whole envelope: %v", err)
	}
	delete(m, "aggregate_type")
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := schemas.ParseEnvelope(b); !errors.Is(err, schemas.ErrInvalidEvent) || !strings.Contains(err.Error(), "aggregate_type") {
		t.Errorf("ParseEnvelope without aggregate_type: %v, want ErrInvalidEvent naming it", err)
	}
}

// TestParseEnvelopeAggregateIDLength: an aggregate_id longer than the
// envelope schema's 128 characters is invalid for every reader (the search
// engine refuses a document id over 512 bytes; analytics stored it).
func TestParseEnvelopeAggregateIDLength(t *testing.T) {
	t.Parallel()
	_, m := paidEnvelopeMap(t)
	for _, tt := range []struct {
		id string
		ok bool
	}{
		{strings.Repeat("é", schemas.MaxAggregateID), true},
		{strings.Repeat("x", schemas.MaxAggregateID+1), false},
		{strings.Repeat("x", 600), false},
	} {
		m["aggregate_id"] = tt.id
		b, err := json.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		_, err = schemas.ParseEnvelope(b)
		if tt.ok && err != nil || !tt.ok && (!errors.Is(err, schemas.ErrInvalidEvent) || !strings.Contains(err.Error(), "aggregate_id of")) {
			t.Errorf("aggregate_id of %d bytes: %v", len(tt.id), err)
		}
	}
}
