package analytics

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/orderstream/orderstream/schemas"
	"github.com/shopspring/decimal"
)

var placedAt = time.Date(2010, 12, 1, 8, 26, 0, 0, time.UTC)

func gbp(s string) schemas.Money { return schemas.NewMoney(decimal.RequireFromString(s), "GBP") }

func envelope(t *testing.T, version int64, p schemas.Payload) schemas.Envelope {
	t.Helper()
	e, err := schemas.NewEnvelope("order-1", version, placedAt.Add(123*time.Millisecond), p, schemas.Metadata{})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func placed(mut func(*schemas.OrderPlaced)) *schemas.OrderPlaced {
	p := &schemas.OrderPlaced{
		OrderNumber: "536365", Kind: schemas.KindSale, Customer: schemas.Customer{ID: "17850", Country: "United Kingdom"}, Currency: "GBP",
		Lines: []schemas.Line{
			{LineNo: 1, StockCode: "85123A", Description: "WHITE HANGING HEART T-LIGHT HOLDER", Quantity: 6, UnitPrice: gbp("2.55")},
			{LineNo: 2, StockCode: "71053", Description: "WHITE METAL LANTERN", Quantity: 6, UnitPrice: gbp("0.001")},
		},
		Total: gbp("15.306"),
	}
	if mut != nil {
		mut(p)
	}
	return p
}

func TestRowsAdd(t *testing.T) {
	t.Parallel()
	at := placedAt // truncated to seconds
	tests := []struct {
		name    string
		give    func(t *testing.T) schemas.Envelope
		want    Rows
		wantErr string
	}{
		{
			name: "placed sale: a row per line, an order row, a status row",
			give: func(t *testing.T) schemas.Envelope { return envelope(t, 1, placed(nil)) },
			want: Rows{
				Lines: []LineRow{
					{OrderID: "order-1", LineNo: 1, OrderNumber: "536365", Kind: "sale", CustomerID: "17850", Country: "United Kingdom",
						StockCode: "85123A", Description: "WHITE HANGING HEART T-LIGHT HOLDER", Quantity: 6,
						UnitPrice: decimal.RequireFromString("2.55"), Amount: decimal.RequireFromString("15.3"), PlacedAt: at, Version: 1},
					{OrderID: "order-1", LineNo: 2, OrderNumber: "536365", Kind: "sale", CustomerID: "17850", Country: "United Kingdom",
						StockCode: "71053", Description: "WHITE METAL LANTERN", Quantity: 6,
						UnitPrice: decimal.RequireFromString("0.001"), Amount: decimal.RequireFromString("0.006"), PlacedAt: at, Version: 1},
				},
				Orders: []OrderRow{{OrderID: "order-1", OrderNumber: "536365", Kind: "sale", CustomerID: "17850", Country: "United Kingdom",
					Currency: "GBP", Total: decimal.RequireFromString("15.306"), Lines: 2, PlacedAt: at, Version: 1}},
				Statuses: []StatusRow{{OrderID: "order-1", Status: "placed", EventType: "order.placed", Amount: decimal.Zero, UpdatedAt: at, Version: 1}},
			},
		},
		{
			name: "placed credit note of a guest: negative amounts, empty customer",
			give: func(t *testing.T) schemas.Envelope {
				return envelope(t, 1, placed(func(p *schemas.OrderPlaced) {
					p.OrderNumber, p.Kind, p.Customer.ID = "C536379", schemas.KindCreditNote, ""
					p.Lines = []schemas.Line{{LineNo: 1, StockCode: "D", Description: "Discount", Quantity: -1, UnitPrice: gbp("27.50")}}
					p.Total = gbp("-27.5")
				}))
			},
			want: Rows{
				Lines: []LineRow{{OrderID: "order-1", LineNo: 1, OrderNumber: "C536379", Kind: "credit_note", Country: "United Kingdom",
					StockCode: "D", Description: "Discount", Quantity: -1, UnitPrice: decimal.RequireFromString("27.5"),
					Amount: decimal.RequireFromString("-27.5"), PlacedAt: at, Version: 1}},
				Orders: []OrderRow{{OrderID: "order-1", OrderNumber: "C536379", Kind: "credit_note", Country: "United Kingdom",
					Currency: "GBP", Total: decimal.RequireFromString("-27.5"), Lines: 1, PlacedAt: at, Version: 1}},
				Statuses: []StatusRow{{OrderID: "order-1", Status: "placed", EventType: "order.placed", Amount: decimal.Zero, UpdatedAt: at, Version: 1}},
			},
		},
		{
			name: "paid: a status row only",
			give: func(t *testing.T) schemas.Envelope { return envelope(t, 2, &schemas.OrderPaid{Amount: gbp("15.306")}) },
			want: Rows{Statuses: []StatusRow{{OrderID: "order-1", Status: "paid", EventType: "order.paid",
				Amount: decimal.RequireFromString("15.306"), UpdatedAt: at, Version: 2}}},
		},
		{
			name: "refunded",
			give: func(t *testing.T) schemas.Envelope {
				return envelope(t, 2, &schemas.OrderRefunded{Amount: gbp("27.5")})
			},
			want: Rows{Statuses: []StatusRow{{OrderID: "order-1", Status: "refunded", EventType: "order.refunded",
				Amount: decimal.RequireFromString("27.5"), UpdatedAt: at, Version: 2}}},
		},
		{
			name: "shipped",
			give: func(t *testing.T) schemas.Envelope { return envelope(t, 3, &schemas.OrderShipped{Carrier: "DPD"}) },
			want: Rows{Statuses: []StatusRow{{OrderID: "order-1", Status: "shipped", EventType: "order.shipped", UpdatedAt: at, Version: 3}}},
		},
		{
			name: "cancelled",
			give: func(t *testing.T) schemas.Envelope { return envelope(t, 2, &schemas.OrderCancelled{Reason: "x"}) },
			want: Rows{Statuses: []StatusRow{{OrderID: "order-1", Status: "cancelled", EventType: "order.cancelled", UpdatedAt: at, Version: 2}}},
		},
		{
			name: "unknown event type",
			give: func(t *testing.T) schemas.Envelope {
				e := envelope(t, 2, &schemas.OrderPaid{Amount: gbp("1")})
				e.EventType = "order.teleported"
				return e
			},
			wantErr: "unknown event type",
		},
		{
			name: "unknown schema version",
			give: func(t *testing.T) schemas.Envelope {
				e := envelope(t, 2, &schemas.OrderPaid{Amount: gbp("1")})
				e.SchemaVersion = 9
				return e
			},
			wantErr: "unknown event type or schema version",
		},
		{
			name: "payload of the wrong shape",
			give: func(t *testing.T) schemas.Envelope {
				e := envelope(t, 1, placed(nil))
				e.Payload = json.RawMessage(`{"lines":"many"}`)
				return e
			},
			wantErr: "decode order.placed v2 payload",
		},
		{
			name: "another aggregate type",
			give: func(t *testing.T) schemas.Envelope {
				e := envelope(t, 1, placed(nil))
				e.AggregateType = "customer"
				return e
			},
			wantErr: `aggregate_type "customer"`,
		},
		{
			name: "epoch time",
			give: func(t *testing.T) schemas.Envelope {
				e := envelope(t, 1, placed(nil))
				e.OccurredAt = time.Unix(0, 0)
				return e
			},
			wantErr: "occurred_at 1970-01-01T00:00:00Z: outside",
		},
		{
			name: "placed on the web: the channel on the order and its line",
			give: func(t *testing.T) schemas.Envelope {
				return envelope(t, 1, placed(func(p *schemas.OrderPlaced) {
					p.Channel = schemas.ChannelWeb
					p.Lines, p.Total = p.Lines[:1], gbp("15.3")
				}))
			},
			want: Rows{
				Lines: []LineRow{{OrderID: "order-1", LineNo: 1, OrderNumber: "536365", Kind: "sale", CustomerID: "17850", Country: "United Kingdom",
					Channel: "web", StockCode: "85123A", Description: "WHITE HANGING HEART T-LIGHT HOLDER", Quantity: 6,
					UnitPrice: decimal.RequireFromString("2.55"), Amount: decimal.RequireFromString("15.3"), PlacedAt: at, Version: 1}},
				Orders: []OrderRow{{OrderID: "order-1", OrderNumber: "536365", Kind: "sale", CustomerID: "17850", Country: "United Kingdom",
					Channel: "web", Currency: "GBP", Total: decimal.RequireFromString("15.3"), Lines: 1, PlacedAt: at, Version: 1}},
				Statuses: []StatusRow{{OrderID: "order-1", Status: "placed", EventType: "order.placed", Amount: decimal.Zero, UpdatedAt: at, Version: 1}},
			},
		},
		{
			name: "unknown channel",
			give: func(t *testing.T) schemas.Envelope {
				return envelope(t, 1, placed(func(p *schemas.OrderPlaced) { p.Channel = "email" }))
			},
			wantErr: `channel "email"`,
		},
		{
			name: "unknown kind",
			give: func(t *testing.T) schemas.Envelope {
				return envelope(t, 1, placed(func(p *schemas.OrderPlaced) { p.Kind = "quote" }))
			},
			wantErr: `kind "quote"`,
		},
		{
			name: "other currency",
			give: func(t *testing.T) schemas.Envelope {
				return envelope(t, 1, placed(func(p *schemas.OrderPlaced) { p.Currency = "EUR" }))
			},
			wantErr: `currency "EUR": this read model holds GBP only`,
		},
		{
			name: "price with 4 decimals",
			give: func(t *testing.T) schemas.Envelope {
				return envelope(t, 1, placed(func(p *schemas.OrderPlaced) { p.Lines[1].UnitPrice = gbp("0.0015") }))
			},
			wantErr: "lines[1].unit_price 0.0015 has more than 3 decimals",
		},
		{
			name: "amount beyond Decimal(18,3)",
			give: func(t *testing.T) schemas.Envelope {
				return envelope(t, 1, placed(func(p *schemas.OrderPlaced) {
					p.Lines[0].Quantity, p.Lines[0].UnitPrice = schemas.MaxQuantity, gbp("1000000") // quantity and price in range
				}))
			},
			wantErr: "is beyond ±99999999999999.999",
		},
		{
			// Decimal(18,3) holds it, the write side does not: the read
			// model keeps the contract's range, not its column's.
			name: "price beyond the contract's range",
			give: func(t *testing.T) schemas.Envelope {
				return envelope(t, 1, placed(func(p *schemas.OrderPlaced) { p.Lines[0].UnitPrice = gbp("500000000000000") }))
			},
			wantErr: "lines[0].unit_price 500000000000000 is beyond ±99999999999999.999",
		},
		{
			name: "repeated line number",
			give: func(t *testing.T) schemas.Envelope {
				return envelope(t, 1, placed(func(p *schemas.OrderPlaced) { p.Lines[1].LineNo = 1 }))
			},
			wantErr: "lines[1].line_no 1: want unique numbers",
		},
		{
			name: "total not the sum of the lines",
			give: func(t *testing.T) schemas.Envelope {
				return envelope(t, 1, placed(func(p *schemas.OrderPlaced) { p.Total = gbp("15.3") }))
			},
			wantErr: "total 15.3 is not the sum of the line amounts 15.306",
		},
		{
			name: "no lines",
			give: func(t *testing.T) schemas.Envelope {
				return envelope(t, 1, placed(func(p *schemas.OrderPlaced) { p.Lines = nil }))
			},
			wantErr: "no lines",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := tt.give(t)
			var got Rows
			err := got.Add(e, "GBP")
			if tt.wantErr != "" {
				if err == nil || !errors.Is(err, ErrRejected) || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Add() error = %v, want ErrRejected containing %q", err, tt.wantErr)
				}
				if got.Len() != 0 {
					t.Fatalf("a rejected event left %d rows", got.Len())
				}
				return
			}
			if err != nil {
				t.Fatalf("Add() error = %v", err)
			}
			if !rowsEqual(got, tt.want) {
				t.Errorf("Add() rows =\n%+v\nwant\n%+v", got, tt.want)
			}
		})
	}
}

// rowsEqual compares rows with decimals by value (2.55 equals 2.550).
func rowsEqual(a, b Rows) bool {
	norm := func(r Rows) string {
		for i := range r.Lines {
			r.Lines[i].UnitPrice, r.Lines[i].Amount = decimal.RequireFromString(r.Lines[i].UnitPrice.StringFixed(3)), decimal.RequireFromString(r.Lines[i].Amount.StringFixed(3))
		}
		for i := range r.Orders {
			r.Orders[i].Total = decimal.RequireFromString(r.Orders[i].Total.StringFixed(3))
		}
		for i := range r.Statuses {
			r.Statuses[i].Amount = decimal.RequireFromString(r.Statuses[i].Amount.StringFixed(3))
		}
		b, _ := json.Marshal(r)
		return string(b)
	}
	return norm(a) == norm(b)
}

func TestDivHalfEven(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		a, b   string
		places int32
		want   string
	}{
		{"exact", "10", "4", 3, "2.500"},
		{"half to even, down", "0.0025", "1", 3, "0.002"},
		{"half to even, up", "0.0035", "1", 3, "0.004"},
		{"above half", "2", "3", 3, "0.667"},
		{"below half", "1", "3", 3, "0.333"},
		{"negative half to even", "-0.0025", "1", 3, "-0.002"},
		{"negative above half", "-2", "3", 3, "-0.667"},
		{"by zero", "5", "0", 3, "0.000"},
		{"real file aov", "10655622.484", "22061", 3, "483.007"},
		{"real file return rate", "3836", "22061", 6, "0.173882"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := DivHalfEven(decimal.RequireFromString(tt.a), decimal.RequireFromString(tt.b), tt.places)
			if got.StringFixed(tt.places) != tt.want {
				t.Errorf("DivHalfEven(%s, %s, %d) = %s, want %s", tt.a, tt.b, tt.places, got.StringFixed(tt.places), tt.want)
			}
		})
	}
}

func TestStatements(t *testing.T) {
	t.Parallel()
	got := statements("-- comment\nCREATE TABLE a (x String);\n\n-- two\nCREATE TABLE b (y String)\nENGINE = Log;\n")
	want := []string{"CREATE TABLE a (x String)", "CREATE TABLE b (y String)\nENGINE = Log"}
	if len(got) != len(want) || got[0] != want[0] || got[1] != want[1] {
		t.Errorf("statements() = %q, want %q", got, want)
	}
	for _, scope := range []string{"database", "generation"} {
		ms, err := loadMigrations(scope)
		if err != nil || len(ms) == 0 || ms[0].version != 1 {
			t.Errorf("loadMigrations(%s) = %v, %v", scope, ms, err)
		}
	}
}
