package schemas_test

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/orderstream/orderstream/internal/testfixture"
	"github.com/orderstream/orderstream/schemas"
	"github.com/shopspring/decimal"
)

// TestAppendersMatchEncodingJSON holds the write side's appenders to
// encoding/json, byte for byte, on every event of the real file and on
// values they must hand back to encoding/json (ok false) or write alike.
func TestAppendersMatchEncodingJSON(t *testing.T) {
	t.Parallel()
	check := func(t *testing.T, what string, got []byte, ok bool, v any, wantOK bool) {
		t.Helper()
		want, err := json.Marshal(v)
		if err != nil && wantOK {
			t.Fatal(err)
		}
		if ok != wantOK {
			t.Errorf("%s: ok = %v, want %v (encoding/json: %s)", what, ok, wantOK, want)
		}
		if ok && !bytes.Equal(got, want) {
			t.Errorf("%s:\n got %s\nwant %s", what, got, want)
		}
	}
	t.Run("real file", func(t *testing.T) {
		t.Parallel()
		for i, ev := range testfixture.RealEvents(t) {
			p, err := ev.Decode()
			if err != nil {
				t.Fatal(err)
			}
			got, ok := schemas.AppendPayload(p)
			check(t, ev.EventType+" payload", got, ok, p, true)
			got, ok = schemas.AppendEnvelope(ev)
			check(t, ev.EventType+" envelope", got, ok, ev, true)
			if t.Failed() {
				t.Fatalf("event %d of order %s", i, ev.AggregateID)
			}
		}
	})
	london, err := time.LoadLocation("Europe/London")
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2011, 6, 1, 12, 30, 0, 500, london)
	line := func(desc string, at time.Time) schemas.Line {
		return schemas.Line{LineNo: 1, StockCode: "85123A", Description: desc, Quantity: -3,
			UnitPrice: schemas.Money{Amount: decimal.RequireFromString("2.550"), Currency: "GBP"}, InvoicedAt: at}
	}
	placed := func(desc string, at time.Time) *schemas.OrderPlaced {
		return &schemas.OrderPlaced{OrderNumber: "C536379", Kind: schemas.KindCreditNote, Customer: schemas.Customer{Country: "EIRE"},
			Channel: schemas.ChannelWeb, Currency: "GBP", Lines: []schemas.Line{line(desc, at)},
			Total: schemas.Money{Amount: decimal.RequireFromString("-7.65"), Currency: "GBP"}}
	}
	for _, tt := range []struct {
		name   string
		give   schemas.Payload
		wantOK bool
	}{
		{"offset time, channel, no customer id", placed("WHITE HEART", at), true},
		{"nil lines", &schemas.OrderPlaced{Currency: "GBP"}, true},
		{"HTML characters", placed("CAKE & TEA <3>", at), true},
		{"quote, backslash", placed(`12" RULER \ 30CM`, at), true},
		{"control characters", placed("A\tB\nC\rD\bE\fF\x01G\x7f", at), true},
		{"non-ASCII", placed("CAFÉ ☕", at), true},
		{"invalid UTF-8", placed("CAF\xe9 \xff", at), true},
		{"line and paragraph separators", placed("A\u2028B\u2029C", at), true},
		{"year 10000", placed("X", time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)), false},
		{"paid", &schemas.OrderPaid{Amount: schemas.Money{Amount: decimal.New(1234, -2), Currency: "GBP"}, Reference: "r-1"}, true},
		{"paid, no reference", schemas.OrderPaid{Amount: schemas.Money{Amount: decimal.New(0, 0), Currency: "GBP"}}, true},
		{"refunded", &schemas.OrderRefunded{Amount: schemas.Money{Amount: decimal.New(-5, 0), Currency: "GBP"}, Reason: "return"}, true},
		{"shipped: not written here", &schemas.OrderShipped{Carrier: "dhl"}, false},
	} {
		got, ok := schemas.AppendPayload(tt.give)
		check(t, tt.name, got, ok, tt.give, tt.wantOK)
	}
	env, err := schemas.NewEnvelope("0190d3f0-aaaa-7bbb-8ccc-0123456789ab", 1, at, placed("X", at), schemas.Metadata{CausationID: "invoice:1"})
	if err != nil {
		t.Fatal(err)
	}
	got, ok := schemas.AppendEnvelope(env)
	check(t, "envelope, no correlation id", got, ok, env, true)
	env.EventID, env.Traceparent, env.CorrelationID = uuid.Nil, "00-<x>", "é"
	got, ok = schemas.AppendEnvelope(env)
	check(t, "envelope, escapes, all ids", got, ok, env, true)
	env.RecordedAt = time.Date(-1, 1, 1, 0, 0, 0, 0, time.UTC)
	got, ok = schemas.AppendEnvelope(env)
	check(t, "envelope, year -1", got, ok, env, false)
}
