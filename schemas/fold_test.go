package schemas_test

import (
	"errors"
	"testing"

	"github.com/orderstream/orderstream/schemas"
	"github.com/shopspring/decimal"
)

func TestFoldApply(t *testing.T) {
	t.Parallel()
	sale := &schemas.OrderPlaced{OrderNumber: "536365", Kind: schemas.KindSale, Currency: "GBP", Total: gbp("100")}
	credit := &schemas.OrderPlaced{OrderNumber: "C536379", Kind: schemas.KindCreditNote, Currency: "GBP", Total: gbp("-27.5")}
	adjust := &schemas.OrderPlaced{OrderNumber: "A563185", Kind: schemas.KindAdjustment, Currency: "GBP", Total: gbp("11062.06")}
	paid := &schemas.OrderPaid{Amount: gbp("100")}
	shipped := &schemas.OrderShipped{Carrier: "DPD"}
	refund := func(s string) schemas.Payload { return &schemas.OrderRefunded{Amount: gbp(s)} }
	type want struct {
		status         schemas.Status
		paid, refunded string
	}
	tests := []struct {
		name string
		give []schemas.Payload
		want want
	}{
		{name: "placed sale", give: []schemas.Payload{sale}, want: want{schemas.StatusPlaced, "0", "0"}},
		{name: "placed adjustment", give: []schemas.Payload{adjust}, want: want{schemas.StatusPlaced, "0", "0"}},
		{name: "paid", give: []schemas.Payload{sale, paid}, want: want{schemas.StatusPaid, "100", "0"}},
		{name: "shipped", give: []schemas.Payload{sale, paid, shipped}, want: want{schemas.StatusShipped, "100", "0"}},
		{name: "cancelled", give: []schemas.Payload{sale, paid, &schemas.OrderCancelled{Reason: "x"}}, want: want{schemas.StatusCancelled, "100", "0"}},
		{name: "partial refund of a paid sale stays paid", give: []schemas.Payload{sale, paid, refund("40")}, want: want{schemas.StatusPaid, "100", "40"}},
		{name: "partial refund of a shipped sale stays shipped", give: []schemas.Payload{sale, paid, shipped, refund("0.001")}, want: want{schemas.StatusShipped, "100", "0.001"}},
		{name: "refunds that complete what was paid", give: []schemas.Payload{sale, paid, shipped, refund("40"), refund("60")}, want: want{schemas.StatusRefunded, "100", "100"}},
		{name: "full refund at once", give: []schemas.Payload{sale, paid, refund("100.000")}, want: want{schemas.StatusRefunded, "100", "100"}},
		{name: "credit note refunded", give: []schemas.Payload{credit, refund("27.5")}, want: want{schemas.StatusRefunded, "0", "27.5"}},
		{name: "placed again resets", give: []schemas.Payload{sale, paid, refund("40"), credit}, want: want{schemas.StatusPlaced, "0", "0"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var f schemas.Fold
			for i, p := range tt.give {
				before := f
				next, err := f.Apply(p)
				if err != nil {
					t.Fatalf("event %d: %v", i, err)
				}
				if f != before {
					t.Fatalf("event %d: Apply modified its receiver", i)
				}
				f = next
			}
			if f.Status != tt.want.status || !f.Paid.Equal(decimal.RequireFromString(tt.want.paid)) || !f.Refunded.Equal(decimal.RequireFromString(tt.want.refunded)) {
				t.Errorf("fold = %s paid %s refunded %s, want %s paid %s refunded %s", f.Status, f.Paid, f.Refunded, tt.want.status, tt.want.paid, tt.want.refunded)
			}
			if pl := tt.give[lastPlaced(tt.give)].(*schemas.OrderPlaced); f.Kind != pl.Kind {
				t.Errorf("kind = %s, want %s (from the last order.placed)", f.Kind, pl.Kind)
			}
		})
	}
}

// lastPlaced returns the index of the last order.placed in ps.
func lastPlaced(ps []schemas.Payload) int {
	last := 0
	for i, p := range ps {
		if _, ok := p.(*schemas.OrderPlaced); ok {
			last = i
		}
	}
	return last
}

func TestFoldApplyUnknown(t *testing.T) {
	t.Parallel()
	f := schemas.Fold{Status: schemas.StatusPaid}
	got, err := f.Apply(nil)
	if !errors.Is(err, schemas.ErrUnknownEvent) {
		t.Fatalf("Apply(nil) error = %v, want ErrUnknownEvent", err)
	}
	if got.Status != schemas.StatusPaid {
		t.Errorf("status after an unknown event = %s, want paid (unchanged)", got.Status)
	}
	if _, ok := schemas.StatusOf(nil); ok {
		t.Error("StatusOf(nil) ok = true, want false")
	}
}
