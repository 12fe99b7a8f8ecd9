package schemas

import (
	"errors"
	"testing"
	"time"

	"github.com/shopspring/decimal"
)

func TestCheckPlaced(t *testing.T) {
	t.Parallel()
	gbp := func(s string) Money { return NewMoney(decimal.RequireFromString(s), "GBP") }
	at := time.Date(2011, 1, 2, 3, 4, 5, 0, time.UTC)
	good := func() *OrderPlaced {
		return &OrderPlaced{OrderNumber: "536365", Kind: KindSale, Customer: Customer{Country: "France"}, Currency: "GBP",
			Lines: []Line{{LineNo: 1, StockCode: "A", Quantity: 2, UnitPrice: gbp("2.5"), InvoicedAt: at},
				{LineNo: 2, StockCode: "B", Quantity: -1, UnitPrice: gbp("0.125"), InvoicedAt: at}},
			Total: gbp("4.875")}
	}
	if err := CheckPlaced(good()); err != nil {
		t.Fatalf("a consistent order.placed: %v", err)
	}
	for _, tt := range []struct {
		name string
		edit func(*OrderPlaced)
		want error
	}{
		{"no order number", func(p *OrderPlaced) { p.OrderNumber = "" }, ErrInvalidEvent},
		{"unknown kind", func(p *OrderPlaced) { p.Kind = "gift" }, ErrInvalidEvent},
		{"no lines", func(p *OrderPlaced) { p.Lines, p.Total = nil, gbp("0") }, ErrInvalidEvent},
		{"line number 0", func(p *OrderPlaced) { p.Lines[0].LineNo = 0 }, ErrInvalidEvent},
		{"line number repeated", func(p *OrderPlaced) { p.Lines[1].LineNo = 1 }, ErrInvalidEvent},
		{"price in another currency", func(p *OrderPlaced) { p.Lines[1].UnitPrice.Currency = "EUR" }, ErrInvalidEvent},
		{"total in another currency", func(p *OrderPlaced) { p.Total.Currency = "EUR" }, ErrInvalidEvent},
		{"total not the sum", func(p *OrderPlaced) { p.Total = gbp("4.876") }, ErrInvalidEvent},
		{"quantity out of range at price 0", func(p *OrderPlaced) {
			p.Lines[0].Quantity, p.Lines[0].UnitPrice, p.Total = MaxQuantity+1, gbp("0"), gbp("-0.125")
		}, ErrOutOfRange},
		{"price with 4 decimals", func(p *OrderPlaced) { p.Lines[1].UnitPrice = gbp("0.1251") }, ErrOutOfRange},
	} {
		p := good()
		tt.edit(p)
		if err := CheckPlaced(p); !errors.Is(err, tt.want) {
			t.Errorf("%s: CheckPlaced = %v, want an error wrapping %v", tt.name, err, tt.want)
		}
	}
}
