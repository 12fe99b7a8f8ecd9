package order_test

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/orderstream/orderstream/producer/order"
	"github.com/orderstream/orderstream/schemas"
	"github.com/shopspring/decimal"
)

var t0 = time.Date(2010, 12, 1, 8, 26, 0, 0, time.UTC)

func gbp(s string) schemas.Money {
	return schemas.NewMoney(decimal.RequireFromString(s), schemas.CurrencyGBP)
}

func line(stock string, qty int64, price string) schemas.Line {
	return schemas.Line{StockCode: stock, Description: stock, Quantity: qty, UnitPrice: gbp(price)}
}

// input returns a valid PlaceInput of kind with lines (total of the default
// sale: 6 × 2.55 + 2 × 0.001 = 15.302).
func input(kind schemas.Kind, lines ...schemas.Line) order.PlaceInput {
	if len(lines) == 0 {
		switch kind {
		case schemas.KindCreditNote:
			lines = []schemas.Line{line("D", -1, "27.50"), line("D", -1, "27.50")} // credits 55
		default:
			lines = []schemas.Line{line("85123A", 6, "2.55"), line("POST", 2, "0.001")}
		}
	}
	return order.PlaceInput{Number: "536365", Kind: kind, CustomerID: "17850", Country: "United Kingdom",
		Currency: schemas.CurrencyGBP, PlacedAt: t0, Lines: lines}
}

type step func(o *order.Order) error

func place(in order.PlaceInput) step { return func(o *order.Order) error { return o.Place(in) } }
func pay(amount string) step {
	return func(o *order.Order) error { return o.Pay(t0.Add(time.Minute), gbp(amount), "ref") }
}
func payMoney(m schemas.Money) step {
	return func(o *order.Order) error { return o.Pay(t0.Add(time.Minute), m, "ref") }
}
func ship() step { return func(o *order.Order) error { return o.Ship(t0.Add(time.Hour), "DHL", "1Z") } }
func cancel(reason string) step {
	return func(o *order.Order) error { return o.Cancel(t0.Add(time.Hour), reason) }
}
func refund(amount string) step {
	return func(o *order.Order) error { return o.Refund(t0.Add(2*time.Hour), gbp(amount), "return") }
}
func refundMoney(m schemas.Money) step {
	return func(o *order.Order) error { return o.Refund(t0.Add(2*time.Hour), m, "return") }
}

var (
	sale   = place(input(schemas.KindSale))
	credit = place(input(schemas.KindCreditNote))
	adjust = place(input(schemas.KindAdjustment, line("B", 1, "-11062.06")))
)

func TestRules(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		give    []step // must all succeed
		do      step
		want    schemas.Status // status after do (unchanged when it fails)
		wantErr error
	}{
		// place
		{name: "place sale", do: sale, want: schemas.StatusPlaced},
		{name: "place credit note", do: credit, want: schemas.StatusPlaced},
		{name: "place adjustment", do: adjust, want: schemas.StatusPlaced},
		{name: "place guest sale", do: place(func() order.PlaceInput { in := input(schemas.KindSale); in.CustomerID = ""; return in }()), want: schemas.StatusPlaced},
		{name: "place twice", give: []step{sale}, do: sale, want: schemas.StatusPlaced, wantErr: order.ErrAlreadyPlaced},
		{name: "place unknown kind", do: place(input("invoice")), wantErr: order.ErrInvalidArgument},
		{name: "place no lines", do: place(order.PlaceInput{Number: "1", Kind: schemas.KindSale, Country: "UK", Currency: "GBP", PlacedAt: t0}), wantErr: order.ErrInvalidArgument},
		{name: "place credit note with positive quantity", do: place(input(schemas.KindCreditNote, line("D", -1, "1"), line("D", 1, "1"))), wantErr: order.ErrInvalidArgument},
		{name: "place line currency differs", do: place(input(schemas.KindSale, schemas.Line{StockCode: "X", Quantity: 1, UnitPrice: schemas.NewMoney(decimal.NewFromInt(1), "EUR")})), wantErr: order.ErrInvalidArgument},
		{name: "place empty number", do: place(func() order.PlaceInput { in := input(schemas.KindSale); in.Number = ""; return in }()), wantErr: order.ErrInvalidArgument},
		{name: "place empty country", do: place(func() order.PlaceInput { in := input(schemas.KindSale); in.Country = ""; return in }()), wantErr: order.ErrInvalidArgument},
		{name: "place bad currency", do: place(func() order.PlaceInput { in := input(schemas.KindSale); in.Currency = "POUND"; return in }()), wantErr: order.ErrInvalidArgument},
		{name: "place zero time", do: place(func() order.PlaceInput { in := input(schemas.KindSale); in.PlacedAt = time.Time{}; return in }()), wantErr: order.ErrInvalidArgument},
		{name: "place empty stock code", do: place(input(schemas.KindSale, line("", 1, "1"))), wantErr: order.ErrInvalidArgument},

		// pay
		{name: "pay before place", do: pay("15.302"), wantErr: order.ErrNotPlaced},
		{name: "pay exact total", give: []step{sale}, do: pay("15.302"), want: schemas.StatusPaid},
		{name: "pay total written with more zeros", give: []step{sale}, do: pay("15.30200"), want: schemas.StatusPaid},
		{name: "pay wrong amount", give: []step{sale}, do: pay("15.30"), want: schemas.StatusPlaced, wantErr: order.ErrAmountMismatch},
		{name: "pay wrong currency", give: []step{sale}, do: payMoney(schemas.NewMoney(decimal.RequireFromString("15.302"), "EUR")), want: schemas.StatusPlaced, wantErr: order.ErrAmountMismatch},
		{name: "pay twice", give: []step{sale, pay("15.302")}, do: pay("15.302"), want: schemas.StatusPaid, wantErr: order.ErrAlreadyPaid},
		{name: "pay cancelled", give: []step{sale, cancel("customer asked")}, do: pay("15.302"), want: schemas.StatusCancelled, wantErr: order.ErrCancelled},
		{name: "pay credit note", give: []step{credit}, do: pay("-55"), want: schemas.StatusPlaced, wantErr: order.ErrWrongKind},
		{name: "pay adjustment", give: []step{adjust}, do: pay("-11062.06"), want: schemas.StatusPlaced, wantErr: order.ErrWrongKind},

		// ship
		{name: "ship before pay", give: []step{sale}, do: ship(), want: schemas.StatusPlaced, wantErr: order.ErrNotPaid},
		{name: "ship paid", give: []step{sale, pay("15.302")}, do: ship(), want: schemas.StatusShipped},
		{name: "ship twice", give: []step{sale, pay("15.302"), ship()}, do: ship(), want: schemas.StatusShipped, wantErr: order.ErrAlreadyShipped},
		{name: "ship refunded", give: []step{sale, pay("15.302"), refund("15.302")}, do: ship(), want: schemas.StatusRefunded, wantErr: order.ErrRefunded},
		{name: "ship credit note", give: []step{credit}, do: ship(), want: schemas.StatusPlaced, wantErr: order.ErrWrongKind},

		// cancel
		{name: "cancel placed", give: []step{sale}, do: cancel("out of stock"), want: schemas.StatusCancelled},
		{name: "cancel paid", give: []step{sale, pay("15.302")}, do: cancel("out of stock"), want: schemas.StatusCancelled},
		{name: "cancel after ship", give: []step{sale, pay("15.302"), ship()}, do: cancel("too late"), want: schemas.StatusShipped, wantErr: order.ErrAlreadyShipped},
		{name: "cancel twice", give: []step{sale, cancel("a")}, do: cancel("b"), want: schemas.StatusCancelled, wantErr: order.ErrCancelled},
		{name: "cancel refunded, never shipped", give: []step{sale, pay("15.302"), refund("15.302")}, do: cancel("x"), want: schemas.StatusRefunded, wantErr: order.ErrRefunded},
		{name: "cancel refunded after ship", give: []step{sale, pay("15.302"), ship(), refund("15.302")}, do: cancel("x"), want: schemas.StatusRefunded, wantErr: order.ErrRefunded},
		{name: "cancel without reason", give: []step{sale}, do: cancel(""), want: schemas.StatusPlaced, wantErr: order.ErrInvalidArgument},
		{name: "cancel credit note", give: []step{credit}, do: cancel("x"), want: schemas.StatusPlaced, wantErr: order.ErrWrongKind},
		{name: "cancel before place", do: cancel("x"), wantErr: order.ErrNotPlaced},

		// nothing happens to an order before it was placed
		{name: "pay before placed", give: []step{sale}, do: func(o *order.Order) error {
			return o.Pay(t0.Add(-time.Second), schemas.NewMoney(decimal.RequireFromString("15.302"), schemas.CurrencyGBP), "r")
		}, want: schemas.StatusPlaced, wantErr: order.ErrInvalidArgument},
		{name: "cancel before placed", give: []step{sale}, do: func(o *order.Order) error { return o.Cancel(t0.Add(-time.Hour), "x") }, want: schemas.StatusPlaced, wantErr: order.ErrInvalidArgument},
		{name: "ship before placed", give: []step{sale, pay("15.302")}, do: func(o *order.Order) error { return o.Ship(t0.Add(-time.Nanosecond), "DPD", "1Z") }, want: schemas.StatusPaid, wantErr: order.ErrInvalidArgument},
		{name: "refund before placed", give: []step{sale, pay("15.302")}, do: func(o *order.Order) error {
			return o.Refund(t0.AddDate(-1, 0, 0), schemas.NewMoney(decimal.RequireFromString("1"), schemas.CurrencyGBP), "r")
		}, want: schemas.StatusPaid, wantErr: order.ErrInvalidArgument},

		// a cancelled order only gives back what was paid
		{name: "ship cancelled", give: []step{sale, pay("15.302"), cancel("x")}, do: ship(), want: schemas.StatusCancelled, wantErr: order.ErrCancelled},
		{name: "refund cancelled paid, in part", give: []step{sale, pay("15.302"), cancel("x")}, do: refund("1"), want: schemas.StatusCancelled},
		{name: "refund cancelled paid, the rest", give: []step{sale, pay("15.302"), refund("1"), cancel("x")}, do: refund("14.302"), want: schemas.StatusRefunded},
		{name: "refund cancelled paid, more than the rest", give: []step{sale, pay("15.302"), refund("1"), cancel("x")}, do: refund("14.303"), want: schemas.StatusCancelled, wantErr: order.ErrAmountMismatch},
		{name: "refund cancelled, never paid", give: []step{sale, cancel("x")}, do: refund("1"), want: schemas.StatusCancelled, wantErr: order.ErrCancelled},

		// refund
		{name: "refund credit note exactly", give: []step{credit}, do: refund("55"), want: schemas.StatusRefunded},
		{name: "refund credit note by total (negative)", give: []step{credit}, do: refund("-55"), want: schemas.StatusPlaced, wantErr: order.ErrAmountMismatch},
		{name: "refund credit note partly", give: []step{credit}, do: refund("27.50"), want: schemas.StatusPlaced, wantErr: order.ErrAmountMismatch},
		{name: "refund credit note twice", give: []step{credit, refund("55")}, do: refund("55"), want: schemas.StatusRefunded, wantErr: order.ErrAmountMismatch},
		{name: "refund credit note other currency", give: []step{credit}, do: refundMoney(schemas.NewMoney(decimal.NewFromInt(55), "EUR")), want: schemas.StatusPlaced, wantErr: order.ErrAmountMismatch},
		{name: "refund unpaid sale", give: []step{sale}, do: refund("1"), want: schemas.StatusPlaced, wantErr: order.ErrNotPaid},
		{name: "refund sale partly", give: []step{sale, pay("15.302")}, do: refund("5.30"), want: schemas.StatusPaid},
		{name: "refund sale partly then the rest", give: []step{sale, pay("15.302"), refund("5.30")}, do: refund("10.002"), want: schemas.StatusRefunded},
		{name: "refund shipped sale partly", give: []step{sale, pay("15.302"), ship()}, do: refund("0.001"), want: schemas.StatusShipped},
		{name: "refund shipped sale fully", give: []step{sale, pay("15.302"), ship()}, do: refund("15.302"), want: schemas.StatusRefunded},
		{name: "refund more than paid", give: []step{sale, pay("15.302")}, do: refund("15.303"), want: schemas.StatusPaid, wantErr: order.ErrAmountMismatch},
		{name: "refund more than left", give: []step{sale, pay("15.302"), refund("10")}, do: refund("5.303"), want: schemas.StatusPaid, wantErr: order.ErrAmountMismatch},
		{name: "refund fully refunded", give: []step{sale, pay("15.302"), refund("15.302")}, do: refund("0.001"), want: schemas.StatusRefunded, wantErr: order.ErrAmountMismatch},
		{name: "refund zero", give: []step{sale, pay("15.302")}, do: refund("0"), want: schemas.StatusPaid, wantErr: order.ErrAmountMismatch},
		{name: "refund negative", give: []step{sale, pay("15.302")}, do: refund("-1"), want: schemas.StatusPaid, wantErr: order.ErrAmountMismatch},
		{name: "refund adjustment", give: []step{adjust}, do: refund("1"), want: schemas.StatusPlaced, wantErr: order.ErrWrongKind},
		{name: "refund before place", do: refund("1"), wantErr: order.ErrNotPlaced},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			o := order.New("id-1")
			for i, s := range tt.give {
				if err := s(o); err != nil {
					t.Fatalf("setup step %d: %v", i, err)
				}
			}
			before := o.Version()
			pending := len(o.Changes())
			err := tt.do(o)
			if !errors.Is(err, tt.wantErr) || (err == nil) != (tt.wantErr == nil) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if got := o.State().Status; got != tt.want {
				t.Errorf("status = %q, want %q", got, tt.want)
			}
			if err != nil {
				var re *order.RuleError
				if !errors.As(err, &re) || re.OrderID != "id-1" || re.Rule != tt.wantErr {
					t.Errorf("err = %#v, want a *RuleError for order id-1 with rule %v", err, tt.wantErr)
				}
				if o.Version() != before || len(o.Changes()) != pending {
					t.Errorf("a refused command changed the order: version %d → %d, changes %d → %d", before, o.Version(), pending, len(o.Changes()))
				}
				return
			}
			if o.Version() != before+1 || len(o.Changes()) != pending+1 {
				t.Errorf("version %d → %d, changes %d → %d: want one new event", before, o.Version(), pending, len(o.Changes()))
			}
		})
	}
}

func TestPlacedEvent(t *testing.T) {
	t.Parallel()
	o := order.New("id-1")
	in := input(schemas.KindSale)
	in.Lines[1].InvoicedAt = t0.Add(2 * time.Minute).In(time.FixedZone("BST", 3600))
	if err := o.Place(in); err != nil {
		t.Fatal(err)
	}
	ch := o.Changes()
	if len(ch) != 1 || ch[0].Version != 1 || !ch[0].OccurredAt.Equal(t0) {
		t.Fatalf("changes = %+v", ch)
	}
	p, ok := ch[0].Payload.(*schemas.OrderPlaced)
	if !ok {
		t.Fatalf("payload %T", ch[0].Payload)
	}
	if !p.Total.Equal(gbp("15.302")) || p.OrderNumber != "536365" || p.Kind != schemas.KindSale || len(p.Lines) != 2 {
		t.Errorf("payload = %+v", p)
	}
	for i, l := range p.Lines {
		if l.LineNo != i+1 || l.InvoicedAt.Location() != time.UTC {
			t.Errorf("line %d = %+v: want LineNo %d, UTC time", i, l, i+1)
		}
	}
	if !p.Lines[0].InvoicedAt.Equal(t0) || !p.Lines[1].InvoicedAt.Equal(t0.Add(2*time.Minute)) {
		t.Errorf("invoiced_at = %s, %s: want the placed time when unset, else the line's own", p.Lines[0].InvoicedAt, p.Lines[1].InvoicedAt)
	}
	if in.Lines[0].LineNo != 0 {
		t.Error("Place modified the caller's lines")
	}
}

func TestVersionsAndRehydrate(t *testing.T) {
	t.Parallel()
	o := order.New("id-1")
	for _, s := range []step{sale, pay("15.302"), ship()} {
		if err := s(o); err != nil {
			t.Fatal(err)
		}
	}
	var versions []int64
	var types []string
	for _, c := range o.Changes() {
		versions = append(versions, c.Version)
		types = append(types, c.Payload.EventType())
	}
	if !reflect.DeepEqual(versions, []int64{1, 2, 3}) ||
		!reflect.DeepEqual(types, []string{schemas.TypeOrderPlaced, schemas.TypeOrderPaid, schemas.TypeOrderShipped}) {
		t.Fatalf("versions %v, types %v", versions, types)
	}
	if o.Version() != 3 || o.PersistedVersion() != 0 {
		t.Fatalf("version %d, persisted %d: want 3, 0", o.Version(), o.PersistedVersion())
	}
	o.ClearChanges()
	if o.PersistedVersion() != 3 || len(o.Changes()) != 0 {
		t.Fatalf("after ClearChanges: persisted %d, %d changes", o.PersistedVersion(), len(o.Changes()))
	}

	s := o.State()
	r := order.Rehydrate(s)
	if !reflect.DeepEqual(r.State(), s) {
		t.Fatalf("Rehydrate(State()).State() = %+v, want %+v", r.State(), s)
	}
	if r.Version() != 3 || r.PersistedVersion() != 3 || len(r.Changes()) != 0 {
		t.Fatalf("rehydrated: version %d, persisted %d, %d changes", r.Version(), r.PersistedVersion(), len(r.Changes()))
	}
	// The rehydrated order keeps deciding: the next event is version 4.
	if err := r.Refund(t0.Add(time.Hour), gbp("15.302"), "returned"); err != nil {
		t.Fatal(err)
	}
	if c := r.Changes(); len(c) != 1 || c[0].Version != 4 || r.PersistedVersion() != 3 || r.State().Status != schemas.StatusRefunded {
		t.Fatalf("after refund: changes %+v, persisted %d, status %s", c, r.PersistedVersion(), r.State().Status)
	}
	if !r.State().Refunded.Equal(decimal.RequireFromString("15.302")) || !r.State().Paid.Equal(decimal.RequireFromString("15.302")) {
		t.Errorf("paid %s, refunded %s", r.State().Paid, r.State().Refunded)
	}
}

func TestRuleErrorMessage(t *testing.T) {
	t.Parallel()
	o := order.New("id-7")
	if err := sale(o); err != nil {
		t.Fatal(err)
	}
	err := o.Pay(t0, gbp("1"), "")
	want := "pay order id-7 (status placed): amount does not match: paid 1 GBP, total 15.302 GBP"
	if err == nil || err.Error() != want {
		t.Errorf("err = %v, want %q", err, want)
	}
}

// TestPlaceRange checks that Place refuses every value outside the event
// contract's range (schemas/limits.go) with a detail naming the line and
// the field, and accepts the values at the bounds.
func TestPlaceRange(t *testing.T) {
	t.Parallel()
	maxPrice := schemas.MaxAmount().String()
	withSource := func(l schemas.Line) schemas.Line { l.SourceLine = 7; return l }
	tests := []struct {
		name       string
		give       order.PlaceInput
		wantDetail string // "" = accepted
	}{
		{"price at the bound", input(schemas.KindAdjustment, line("B", 1, maxPrice)), ""},
		{"price and quantity at the line bound", input(schemas.KindAdjustment, line("B", 1000, "99999999999.999")), ""},
		{"quantity at the bound", input(schemas.KindSale, line("P", schemas.MaxQuantity, "0.001")), ""},
		{"issue 10: 1000 × 1e12", input(schemas.KindSale, withSource(line("P", 1000, "1000000000000"))),
			"file line 7: amount (running total of the lines) 1000 × 1000000000000 is beyond ±99999999999999.999"},
		{"price one past", input(schemas.KindSale, line("P", 1, "100000000000000")), "line 1 of the order: unit_price 100000000000000 is beyond"},
		{"4 decimals", input(schemas.KindSale, line("P", 1, "0.0001")), "unit_price 0.0001 has more than 3 decimals"},
		{"quantity one past", input(schemas.KindSale, line("P", schemas.MaxQuantity+1, "0")), "quantity 1000000000 is beyond ±999999999"},
		{"running total past the bound, final total in range", input(schemas.KindAdjustment,
			line("A", 1, maxPrice), line("B", 1, "0.001"), line("C", -1, maxPrice)), "line 2 of the order: amount (running total of the lines) 99999999999999.999 + 0.001 is beyond"},
		{"invalid UTF-8", input(schemas.KindSale, line("P\xff", 1, "1")), "stock code is not valid UTF-8"},
		{"NUL", input(schemas.KindSale, schemas.Line{StockCode: "P", Description: "a\x00", Quantity: 1, UnitPrice: gbp("1")}), "description contains a NUL character"},
		{"time past", func() order.PlaceInput {
			in := input(schemas.KindSale)
			in.PlacedAt = time.Date(2106, 1, 1, 0, 0, 0, 0, time.UTC)
			return in
		}(), "placed_at 2106-01-01T00:00:00Z is outside"},
		{"epoch", func() order.PlaceInput { in := input(schemas.KindSale); in.PlacedAt = time.Unix(0, 0); return in }(), "placed_at 1970-01-01T00:00:00Z is outside"},
		{"control character in the stock code", input(schemas.KindSale, line("85123A\t", 1, "1")), "stock code contains a control character at byte 7"},
		{"control character in the country", func() order.PlaceInput {
			in := input(schemas.KindSale)
			in.Country = "\aFrance"
			return in
		}(), "country contains a control character at byte 1"},
		{"NUL in the country", func() order.PlaceInput {
			in := input(schemas.KindSale)
			in.Country = string(make([]byte, 65))
			return in
		}(), "country contains a NUL"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := order.New("o-1").Place(tt.give)
			if tt.wantDetail == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			var re *order.RuleError
			if !errors.As(err, &re) || !errors.Is(err, order.ErrInvalidArgument) || !strings.Contains(re.Detail, tt.wantDetail) {
				t.Fatalf("err = %v, want ErrInvalidArgument with detail containing %q", err, tt.wantDetail)
			}
		})
	}
}
