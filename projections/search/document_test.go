package search

import (
	"errors"
	"testing"
	"time"

	"github.com/orderstream/orderstream/schemas"
	"github.com/shopspring/decimal"
)

func dec(s string) decimal.Decimal { return decimal.RequireFromString(s) }

func gbp(s string) schemas.Money { return schemas.NewMoney(dec(s), schemas.CurrencyGBP) }

var t0 = time.Date(2010, 12, 1, 8, 26, 0, 0, time.UTC)

// ev builds the envelope of version v of order id.
func ev(t testing.TB, id string, v int64, p schemas.Payload) schemas.Envelope {
	t.Helper()
	e, err := schemas.NewEnvelope(id, v, t0.Add(time.Duration(v)*time.Hour), p, schemas.Metadata{})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func placedSale(number string, kind schemas.Kind) *schemas.OrderPlaced {
	sign := int64(1)
	if kind == schemas.KindCreditNote {
		sign = -1
	}
	return &schemas.OrderPlaced{
		OrderNumber: number, Kind: kind, Customer: schemas.Customer{ID: "17850", Country: "United Kingdom"}, Currency: "GBP",
		Lines: []schemas.Line{
			{LineNo: 1, StockCode: "85123A", Description: "WHITE HANGING HEART T-LIGHT HOLDER", Quantity: 6 * sign, UnitPrice: gbp("2.55")},
			{LineNo: 2, StockCode: "71053", Description: "WHITE METAL LANTERN", Quantity: 6 * sign, UnitPrice: gbp("3.39")},
			{LineNo: 3, StockCode: "85123A", Description: "WHITE HANGING HEART T-LIGHT HOLDER", Quantity: 2 * sign, UnitPrice: gbp("0.001")},
		},
		Total: gbp("35.642").Neg().Neg(),
	}
}

func TestApply(t *testing.T) {
	t.Parallel()
	sale := placedSale("536365", schemas.KindSale)
	credit := placedSale("C536379", schemas.KindCreditNote)
	credit.Total = gbp("-35.642")
	tests := []struct {
		name    string
		give    []schemas.Payload // versions 1..n
		want    func(*Order) string
		wantErr error
	}{
		{
			name: "placed builds the whole document",
			give: []schemas.Payload{sale},
			want: func(o *Order) string {
				switch {
				case o.Status != schemas.StatusPlaced || o.Version != 1 || o.LineCount != 3 || o.OrderNumber != "536365":
					return "header"
				case !o.Total.Equal(dec("35.642")) || o.TotalMilli != 35642:
					return "total"
				case len(o.StockCodes) != 2 || o.StockCodes[0] != "85123A" || len(o.Descriptions) != 2:
					return "distinct codes and descriptions"
				case !o.Lines[2].UnitPrice.Equal(dec("0.001")) || o.Lines[2].Quantity != 2:
					return "exact line"
				case !o.PlacedAt.Equal(t0.Add(time.Hour)) || !o.UpdatedAt.Equal(o.PlacedAt):
					return "times"
				}
				return ""
			},
		},
		{
			name: "paid then shipped",
			give: []schemas.Payload{sale, &schemas.OrderPaid{Amount: gbp("35.642")}, &schemas.OrderShipped{Carrier: "DHL"}},
			want: func(o *Order) string {
				if o.Status != schemas.StatusShipped || o.Version != 3 || !o.Paid.Equal(dec("35.642")) || !o.UpdatedAt.Equal(t0.Add(3*time.Hour)) || !o.PlacedAt.Equal(t0.Add(time.Hour)) {
					return "status, version, paid, times"
				}
				return ""
			},
		},
		{
			name: "partial refund keeps paid, full refund is refunded",
			give: []schemas.Payload{sale, &schemas.OrderPaid{Amount: gbp("35.642")}, &schemas.OrderRefunded{Amount: gbp("10")}},
			want: func(o *Order) string {
				if o.Status != schemas.StatusPaid || !o.Refunded.Equal(dec("10")) {
					return "partial refund"
				}
				return ""
			},
		},
		{
			name: "refund in full",
			give: []schemas.Payload{sale, &schemas.OrderPaid{Amount: gbp("35.642")}, &schemas.OrderRefunded{Amount: gbp("10")}, &schemas.OrderRefunded{Amount: gbp("25.642")}},
			want: func(o *Order) string {
				if o.Status != schemas.StatusRefunded || o.Version != 4 {
					return "full refund"
				}
				return ""
			},
		},
		{
			name: "credit note refunded",
			give: []schemas.Payload{credit, &schemas.OrderRefunded{Amount: gbp("35.642")}},
			want: func(o *Order) string {
				if o.Status != schemas.StatusRefunded || o.TotalMilli != -35642 || o.Lines[0].Quantity != -6 {
					return "credit note"
				}
				return ""
			},
		},
		{
			name: "cancelled",
			give: []schemas.Payload{sale, &schemas.OrderCancelled{Reason: "customer"}},
			want: func(o *Order) string {
				if o.Status != schemas.StatusCancelled || o.Deleted {
					return "cancelled (not deleted)"
				}
				return ""
			},
		},
		{
			name:    "paid without placed",
			give:    []schemas.Payload{&schemas.OrderPaid{Amount: gbp("1")}},
			wantErr: errNoBase,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var o *Order
			var err error
			for i, p := range tt.give {
				prev := o
				var snapshot Order
				if prev != nil {
					snapshot = *prev
				}
				o, err = apply(o, ev(t, "o-1", int64(i+1), p), p)
				if err != nil {
					break
				}
				if prev != nil && (prev.Status != snapshot.Status || prev.Version != snapshot.Version) {
					t.Fatalf("apply modified its input")
				}
			}
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if err == nil {
				if what := tt.want(o); what != "" {
					t.Errorf("wrong %s: %+v", what, o)
				}
			}
		})
	}
}

func TestMilli(t *testing.T) {
	t.Parallel()
	tests := []struct {
		give string
		want int64
	}{
		{"0", 0}, {"2.55", 2550}, {"0.001", 1}, {"-35.642", -35642}, {"9747747.934", 9747747934}, {"0.0005", 1}, {"-0.0005", -1},
	}
	for _, tt := range tests {
		if got := milli(dec(tt.give)); got != tt.want {
			t.Errorf("milli(%s) = %d, want %d", tt.give, got, tt.want)
		}
	}
}
