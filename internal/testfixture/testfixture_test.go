package testfixture_test

import (
	"testing"

	"github.com/orderstream/orderstream/internal/testfixture"
	"github.com/orderstream/orderstream/schemas"
	"github.com/shopspring/decimal"
)

func TestExpectedFromCSV(t *testing.T) {
	e := testfixture.ExpectedFromCSV(t)
	want := decimal.RequireFromString(testfixture.RealNetGBP)
	if !e.Total.Net.Equal(want) {
		t.Errorf("net revenue = %s, want %s", e.Total.Net, want)
	}
	if sum := e.Total.Gross.Add(e.Total.Returns).Add(e.Total.Adjust); !sum.Equal(e.Total.Net) {
		t.Errorf("gross %s + returns %s + adjustments %s = %s, want net %s", e.Total.Gross, e.Total.Returns, e.Total.Adjust, sum, e.Total.Net)
	}
	checks := []struct {
		name      string
		got, want int
	}{
		{"lines", e.Total.Lines, testfixture.RealLines},
		{"documents", e.Total.Documents, testfixture.RealDocuments},
		{"sales", e.Total.ByKind[schemas.KindSale], testfixture.RealSales},
		{"orders", e.Total.Orders, testfixture.RealSales},
		{"credit notes", e.Total.ByKind[schemas.KindCreditNote], testfixture.RealCredits},
		{"adjustments", e.Total.ByKind[schemas.KindAdjustment], testfixture.RealAdjusts},
		{"events", e.Events, testfixture.RealEventsN},
		{"customers", e.Total.Customers, 4372},
		{"countries", len(e.ByCountry), 38},
		{"docs", len(e.Docs), testfixture.RealDocuments},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %d, want %d", c.name, c.got, c.want)
		}
	}
	for name, m := range map[string]map[string]*testfixture.Bucket{"day": e.ByDay, "month": e.ByMonth, "country": e.ByCountry} {
		sum, docs := decimal.Zero, 0
		for _, b := range m {
			sum = sum.Add(b.Net)
			docs += b.Documents
		}
		if !sum.Equal(want) || docs != testfixture.RealDocuments {
			t.Errorf("by %s: Σ net = %s, Σ documents = %d; want %s, %d", name, sum, docs, want, testfixture.RealDocuments)
		}
	}
	if len(e.ByMonth) != 13 {
		t.Errorf("months = %d, want 13 (2010-12 … 2011-12)", len(e.ByMonth))
	}
	// Document 542806 has rows on both sides of C542805: all of them count.
	if d := e.Docs["542806"]; d == nil || d.Lines != 39 {
		t.Errorf("document 542806 = %+v, want 39 lines", d)
	}
	top := e.TopByRevenue(3)
	if len(top) != 3 || top[0].Net.LessThan(top[1].Net) || top[1].Net.LessThan(top[2].Net) {
		t.Errorf("top by revenue not in descending order: %+v", top)
	}
	tq := e.TopByQuantity(2)
	if len(tq) != 2 || tq[0].Quantity < tq[1].Quantity {
		t.Errorf("top by quantity not in descending order: %+v", tq)
	}
}

func TestRealEvents(t *testing.T) {
	evs := testfixture.RealEvents(t)
	if len(evs) != testfixture.RealEventsN {
		t.Fatalf("events = %d, want %d", len(evs), testfixture.RealEventsN)
	}
	e := testfixture.ExpectedFromCSV(t)
	v, err := schemas.NewValidator()
	if err != nil {
		t.Fatal(err)
	}
	net := decimal.Zero
	lastVersion := map[string]int64{}
	for i, ev := range evs {
		if ev.AggregateVersion != lastVersion[ev.AggregateID]+1 {
			t.Fatalf("event %d: %s of %s at version %d after %d", i, ev.EventType, ev.AggregateID, ev.AggregateVersion, lastVersion[ev.AggregateID])
		}
		lastVersion[ev.AggregateID] = ev.AggregateVersion
		if i%97 == 0 { // a sample: validating all takes several seconds
			if _, err := v.Marshal(ev); err != nil {
				t.Fatalf("event %d: %v", i, err)
			}
		}
		if ev.EventType != schemas.TypeOrderPlaced {
			continue
		}
		p, err := ev.Decode()
		if err != nil {
			t.Fatal(err)
		}
		placed := p.(*schemas.OrderPlaced)
		d := e.Docs[placed.OrderNumber]
		if d == nil || !d.PlacedAt.Equal(ev.OccurredAt) || d.Lines != len(placed.Lines) || !d.Total.Equal(placed.Total.Amount) {
			t.Fatalf("order.placed of %s: at %s, %d lines, total %s; expected %+v", placed.OrderNumber, ev.OccurredAt, len(placed.Lines), placed.Total, d)
		}
		net = net.Add(placed.Total.Amount)
	}
	if len(lastVersion) != testfixture.RealDocuments {
		t.Errorf("orders = %d, want %d", len(lastVersion), testfixture.RealDocuments)
	}
	if !net.Equal(e.Total.Net) {
		t.Errorf("Σ order.placed totals = %s, want %s", net, e.Total.Net)
	}
}
