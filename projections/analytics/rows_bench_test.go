package analytics

import (
	"fmt"
	"testing"

	"github.com/orderstream/orderstream/schemas"
	"github.com/shopspring/decimal"
)

// BenchmarkRowsAdd measures the sink's CPU work per order.placed event of 21
// lines (the real file's average): payload decoding and row building.
func BenchmarkRowsAdd(b *testing.B) {
	p := &schemas.OrderPlaced{OrderNumber: "536365", Kind: schemas.KindSale, Customer: schemas.Customer{ID: "17850", Country: "United Kingdom"}, Currency: "GBP"}
	total := decimal.Zero
	for i := 1; i <= 21; i++ {
		l := schemas.Line{LineNo: i, SourceLine: i + 1, StockCode: fmt.Sprintf("85%03dA", i), Description: "WHITE HANGING HEART T-LIGHT HOLDER",
			Quantity: 6, UnitPrice: schemas.NewMoney(decimal.RequireFromString("2.55"), "GBP"), InvoicedAt: placedAt}
		p.Lines = append(p.Lines, l)
		total = total.Add(l.Amount().Amount)
	}
	p.Total = schemas.NewMoney(total, "GBP")
	e, err := schemas.NewEnvelope("order-1", 1, placedAt, p, schemas.Metadata{})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		var r Rows
		if err := r.Add(e, "GBP"); err != nil {
			b.Fatal(err)
		}
	}
}
