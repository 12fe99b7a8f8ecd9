package load

import (
	"strings"
	"testing"
	"time"
)

const sample = `InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country
536365,85123A,WHITE HANGING HEART T-LIGHT HOLDER,6,2010-12-01 08:26:00,2.55,17850,United Kingdom
536365,71053,WHITE METAL LANTERN,6,2010-12-01 08:26:00,3.39,17850,United Kingdom
C536379,D,Discount,-1,2010-12-01 09:41:00,27.5,14527,United Kingdom
536366,22633,HAND WARMER UNION JACK,6,2010-12-01 08:28:00,1.85,17850,United Kingdom
536367,84879,ASSORTED COLOUR BIRD ORNAMENT,32,2010-12-01 08:34:00,1.69,13047,United Kingdom
`

// TestShapes: sales only, their exact totals, and the line limit cutting
// the file after a whole row.
func TestShapes(t *testing.T) {
	t.Parallel()
	shapes, err := Shapes(strings.NewReader(sample), 100, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(shapes) != 3 || shapes[0].Total.String() != "35.64" || len(shapes[0].Lines) != 2 || shapes[0].Customer != "17850" {
		t.Fatalf("shapes %+v; want the 3 sales, the first of 2 lines totalling 35.64", shapes)
	}
	if shapes, err = Shapes(strings.NewReader(sample), 5, 10); err != nil || len(shapes) != 2 {
		t.Fatalf("first 5 lines: %d shapes, %v; want the 2 sales whose rows are within them", len(shapes), err)
	}
	if shapes, _ = Shapes(strings.NewReader(sample), 100, 1); len(shapes) != 1 {
		t.Fatalf("maxDocs 1: %d shapes", len(shapes))
	}
}

func TestLatencyAndLifecycles(t *testing.T) {
	t.Parallel()
	var d []time.Duration
	for i := 100; i >= 1; i-- {
		d = append(d, time.Duration(i)*time.Millisecond)
	}
	if l := latencyOf(d); l.N != 100 || l.P50 != 51*time.Millisecond || l.P99 != 100*time.Millisecond || l.Max != 100*time.Millisecond {
		t.Fatalf("latency %+v", l)
	}
	counts := map[string]int{}
	for i := range 1000 {
		counts[strings.Join(lifecycle(float64(i)/1000), ">")]++
	}
	want := map[string]int{"pay>ship": 700, "cancel": 100, "pay>cancel": 50, "pay>ship>refund-part": 100, "pay>ship>refund-all": 50}
	for k, n := range want {
		if counts[k] != n {
			t.Errorf("lifecycle %s: %d of 1000, want %d", k, counts[k], n)
		}
	}
	r := Report{Rate: 100, Achieved: 99, Command: Latency{P99: 900 * time.Millisecond}}
	if !r.Sustained() {
		t.Error("99 of 100 orders/s, no error, p99 900 ms: not sustained")
	}
	r.Late = map[string]int{"search": 1}
	if r.Sustained() {
		t.Error("a late probe: sustained")
	}
}
