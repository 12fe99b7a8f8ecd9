package testfixture_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

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
	for i, ev := range evs {
		if i%97 == 0 { // a sample: validating all takes several seconds
			if _, err := v.Marshal(ev); err != nil {
				t.Fatalf("event %d: %v", i, err)
			}
		}
	}
	if err := e.CheckEvents(evs); err != nil {
		t.Fatalf("events against the CSV oracle: %v", err)
	}
}

// TestCheckEventsCatches: CheckEvents names a lost event, a duplicate, a
// reordering and an order.placed of the wrong document.
func TestCheckEventsCatches(t *testing.T) {
	evs := testfixture.RealEvents(t)
	e := testfixture.ExpectedFromCSV(t)
	n := len(evs)
	// evs[0], evs[1] are the first document's placed and paid (a sale).
	tests := []struct {
		name string
		give func() []schemas.Envelope
		want string
	}{
		{name: "lost", give: func() []schemas.Envelope { return evs[:n-1] }, want: fmt.Sprintf("%d events of", n-1)},
		{name: "duplicate", give: func() []schemas.Envelope { return append(slices.Clone(evs), evs[1]) }, want: "version 2 after 2"},
		{name: "reordered", give: func() []schemas.Envelope {
			c := slices.Clone(evs)
			c[0], c[1] = c[1], c[0]
			return c
		}, want: "version 2 after 0"},
		{name: "placed of another document", give: func() []schemas.Envelope {
			c := slices.Clone(evs)
			c[0].Payload = evs[2].Payload // the second document's order.placed
			return c
		}, want: "placed again"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			start := time.Now()
			err := e.CheckEvents(tt.give())
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("CheckEvents = %v, want an error naming %q", err, tt.want)
			}
			t.Logf("checked in %s", time.Since(start).Round(time.Millisecond))
		})
	}
}
