package rebuild

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/orderstream/orderstream/consumers"
	"github.com/orderstream/orderstream/producer/order"
	"github.com/orderstream/orderstream/projections/search"
	"github.com/orderstream/orderstream/schemas"
	"github.com/shopspring/decimal"
)

// TestReadModelsAgreeWithAggregate writes the events of orders built by the
// write side's aggregate (partial refunds among them) to both read models
// on the real services, every batch twice (redelivery), and checks that the
// aggregate, the search document and the analytics views order_status and
// orders give every order the same status: a partial refund of a sale
// leaves it paid or shipped, refunds that add up to what was paid make it
// refunded.
func TestReadModelsAgreeWithAggregate(t *testing.T) {
	am, sm := analyticsModel(t), searchModel(t)
	at := time.Date(2011, 3, 1, 10, 0, 0, 0, time.UTC)
	gbp := func(s string) schemas.Money {
		return schemas.NewMoney(decimal.RequireFromString(s), schemas.CurrencyGBP)
	}
	place := func(o *order.Order, kind schemas.Kind, qty int64) error {
		return o.Place(order.PlaceInput{
			Number: "A" + o.ID()[:8], Kind: kind, Country: "United Kingdom", Currency: "GBP", PlacedAt: at,
			Lines: []schemas.Line{{StockCode: "85123A", Description: "WHITE HANGING HEART T-LIGHT HOLDER", Quantity: qty, UnitPrice: gbp("25")}},
		})
	}
	sale := func(o *order.Order) error { return place(o, schemas.KindSale, 4) } // total 100
	pay := func(o *order.Order) error { return o.Pay(at.Add(time.Hour), gbp("100"), "ref") }
	ship := func(o *order.Order) error { return o.Ship(at.Add(2*time.Hour), "DPD", "1Z") }
	cancelOrder := func(o *order.Order) error { return o.Cancel(at.Add(time.Hour), "changed mind") }
	refund := func(amount string) func(*order.Order) error {
		return func(o *order.Order) error { return o.Refund(at.Add(3*time.Hour), gbp(amount), "damaged") }
	}
	tests := []struct {
		name     string
		commands []func(*order.Order) error
		want     schemas.Status
	}{
		{"partial refund of a paid sale", []func(*order.Order) error{sale, pay, refund("40")}, schemas.StatusPaid},
		{"partial refund of a shipped sale", []func(*order.Order) error{sale, pay, ship, refund("0.001")}, schemas.StatusShipped},
		{"two partial refunds, still short", []func(*order.Order) error{sale, pay, ship, refund("40"), refund("59.999")}, schemas.StatusShipped},
		{"refunds that add up to what was paid", []func(*order.Order) error{sale, pay, refund("40"), refund("60")}, schemas.StatusRefunded},
		{"full refund of a shipped sale", []func(*order.Order) error{sale, pay, ship, refund("100")}, schemas.StatusRefunded},
		{"credit note", []func(*order.Order) error{func(o *order.Order) error { return place(o, schemas.KindCreditNote, -1) }, refund("25")}, schemas.StatusRefunded},
		{"cancelled sale", []func(*order.Order) error{sale, pay, cancelOrder}, schemas.StatusCancelled},
		{"cancelled paid sale, partly refunded", []func(*order.Order) error{sale, pay, cancelOrder, refund("30")}, schemas.StatusCancelled},
		{"cancelled paid sale, refunded in full", []func(*order.Order) error{sale, pay, refund("30"), cancelOrder, refund("70")}, schemas.StatusRefunded},
		{"adjustment", []func(*order.Order) error{func(o *order.Order) error { return place(o, schemas.KindAdjustment, 1) }}, schemas.StatusPlaced},
	}
	var records []consumers.Record
	orders := make([]*order.Order, len(tests))
	for i, tt := range tests {
		o := order.New(uuid.NewString())
		for j, c := range tt.commands {
			if err := c(o); err != nil {
				t.Fatalf("%s: command %d: %v", tt.name, j, err)
			}
		}
		if got := o.State().Status; got != tt.want {
			t.Fatalf("%s: aggregate status = %s, want %s", tt.name, got, tt.want)
		}
		for _, ch := range o.Changes() {
			e, err := schemas.NewEnvelope(o.ID(), ch.Version, ch.OccurredAt, ch.Payload, schemas.Metadata{})
			if err != nil {
				t.Fatal(err)
			}
			records = append(records, consumers.Record{Topic: "orders", Offset: int64(len(records)), Key: []byte(o.ID()), Timestamp: ch.OccurredAt, Event: e})
		}
		orders[i] = o
	}

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for _, m := range []model{am, sm} {
		for range 2 { // the second write is a redelivery
			if err := m.daemon.Write(ctx, records); err != nil {
				t.Fatalf("%s: write: %v", m.p.Name(), err)
			}
		}
		if err := m.visible(ctx); err != nil {
			t.Fatalf("%s: refresh: %v", m.p.Name(), err)
		}
	}

	conn := am.conn
	db := "`" + am.db + "`"
	q, err := search.NewQuery(sm.search)
	if err != nil {
		t.Fatal(err)
	}
	for i, tt := range tests {
		st := orders[i].State()
		doc, err := q.Get(ctx, st.ID)
		if err != nil {
			t.Fatalf("%s: search: %v", tt.name, err)
		}
		var viewStatus, ordersStatus string
		var viewVersion, ordersVersion uint64
		if err := conn.QueryRow(ctx, "SELECT status, version FROM "+db+".order_status WHERE order_id = ?", st.ID).Scan(&viewStatus, &viewVersion); err != nil {
			t.Fatalf("%s: analytics order_status: %v", tt.name, err)
		}
		if err := conn.QueryRow(ctx, "SELECT status, version FROM "+db+".orders WHERE order_id = ?", st.ID).Scan(&ordersStatus, &ordersVersion); err != nil {
			t.Fatalf("%s: analytics orders: %v", tt.name, err)
		}
		write := fmt.Sprintf("%s v%d paid %s refunded %s", st.Status, st.Version, st.Paid.StringFixed(3), st.Refunded.StringFixed(3))
		if got := fmt.Sprintf("%s v%d paid %s refunded %s", doc.Status, doc.Version, doc.Paid.StringFixed(3), doc.Refunded.StringFixed(3)); got != write {
			t.Errorf("%s: search document = %s, aggregate = %s", tt.name, got, write)
		}
		if got, want := fmt.Sprintf("%s v%d", viewStatus, viewVersion), fmt.Sprintf("%s v%d", st.Status, st.Version); got != want {
			t.Errorf("%s: analytics order_status = %s, aggregate = %s", tt.name, got, want)
		}
		if got, want := fmt.Sprintf("%s v%d", ordersStatus, ordersVersion), fmt.Sprintf("%s v%d", st.Status, st.Version); got != want {
			t.Errorf("%s: analytics orders = %s, aggregate = %s", tt.name, got, want)
		}
	}
	var rows uint64
	if err := conn.QueryRow(ctx, "SELECT count() FROM "+db+".order_status").Scan(&rows); err != nil {
		t.Fatal(err)
	}
	if rows != uint64(len(tests)) {
		t.Errorf("analytics order_status holds %d rows, want %d (one per order)", rows, len(tests))
	}
}
