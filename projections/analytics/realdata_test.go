package analytics_test

import (
	"context"
	"fmt"
	"sort"
	"testing"
	"time"

	"github.com/orderstream/orderstream/internal/testfixture"
	"github.com/orderstream/orderstream/projections/analytics"
	"github.com/orderstream/orderstream/schemas"
	"github.com/shopspring/decimal"
)

// checkBucket compares one group of the read model with the expectation.
func checkBucket(t *testing.T, what string, got analytics.Totals, want *testfixture.Bucket) {
	t.Helper()
	dec := func(field string, g, w decimal.Decimal) {
		if !g.Equal(w) {
			t.Errorf("%s: %s = %s, want %s", what, field, g, w)
		}
	}
	num := func(field string, g int64, w int) {
		if g != int64(w) {
			t.Errorf("%s: %s = %d, want %d", what, field, g, w)
		}
	}
	dec("net revenue", got.NetRevenue, want.Net)
	dec("gross sales", got.GrossSales, want.Gross)
	dec("returns", got.Returns, want.Returns)
	dec("adjustments", got.Adjustments, want.Adjust)
	num("orders", got.Orders, want.Orders)
	num("credit notes", got.CreditNotes, want.ByKind["credit_note"])
	num("customers", got.Customers, want.Customers)
	num("lines", got.Lines, want.Lines)
	dec("aov", got.AverageOrderValue, analytics.DivHalfEven(want.Gross, decimal.NewFromInt(int64(want.Orders)), 3))
}

func checkGroups(t *testing.T, by analytics.Dimension, got []analytics.Group, want map[string]*testfixture.Bucket) {
	t.Helper()
	keys := make([]string, 0, len(want))
	for k := range want {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	if len(got) != len(keys) {
		t.Errorf("by %s: %d groups, want %d", by, len(got), len(keys))
	}
	for i, g := range got {
		if i >= len(keys) || g.Key != keys[i] {
			t.Fatalf("by %s: group %d is %q, want %q", by, i, g.Key, keys[min(i, len(keys)-1)])
		}
		checkBucket(t, fmt.Sprintf("%s %s", by, g.Key), g.Totals, want[g.Key])
	}
}

// checkAll compares every dashboard answer with the expectation of the real file.
func checkAll(t *testing.T, q *analytics.Queries, exp *testfixture.Expected) {
	t.Helper()
	ctx := context.Background()
	sum, err := q.Summary(ctx, analytics.Filter{})
	if err != nil {
		t.Fatalf("Summary: %v", err)
	}
	if sum.NetRevenue.String() != testfixture.RealNetGBP {
		t.Errorf("net revenue = %s, want %s", sum.NetRevenue, testfixture.RealNetGBP)
	}
	checkBucket(t, "total", sum, &exp.Total)

	for by, want := range map[analytics.Dimension]map[string]*testfixture.Bucket{
		analytics.ByDay: exp.ByDay, analytics.ByMonth: exp.ByMonth, analytics.ByCountry: exp.ByCountry,
	} {
		got, err := q.Breakdown(ctx, analytics.Filter{}, by)
		if err != nil {
			t.Fatalf("Breakdown(%s): %v", by, err)
		}
		checkGroups(t, by, got, want)
	}

	for _, tc := range []struct {
		by   analytics.Rank
		want []*testfixture.Product
	}{
		{analytics.RankRevenue, exp.TopByRevenue(25)},
		{analytics.RankQuantity, exp.TopByQuantity(25)},
	} {
		got, err := q.TopProducts(ctx, analytics.Filter{}, tc.by, 25)
		if err != nil {
			t.Fatalf("TopProducts(%s): %v", tc.by, err)
		}
		if len(got) != len(tc.want) {
			t.Fatalf("TopProducts(%s): %d products, want %d", tc.by, len(got), len(tc.want))
		}
		for i, p := range got {
			w := tc.want[i]
			if p.StockCode != w.StockCode || !p.NetRevenue.Equal(w.Net) || p.Quantity != w.Quantity || p.Documents != int64(len(w.Documents)) {
				t.Errorf("TopProducts(%s) #%d = %s %s qty %d in %d docs, want %s %s qty %d in %d docs", tc.by, i+1,
					p.StockCode, p.NetRevenue, p.Quantity, p.Documents, w.StockCode, w.Net, w.Quantity, len(w.Documents))
			}
			if p.Description == "" {
				t.Errorf("TopProducts(%s) #%d %s: empty description", tc.by, i+1, p.StockCode)
			}
		}
	}
}

// checkFilters compares filtered answers: a month as an inclusive day
// range, a single day (from = to), a country, and a country within a month.
func checkFilters(t *testing.T, q *analytics.Queries, exp *testfixture.Expected) {
	t.Helper()
	ctx := context.Background()
	date := func(s string) time.Time {
		d, err := time.Parse(time.DateOnly, s)
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	got, err := q.Summary(ctx, analytics.Filter{From: date("2011-03-01"), To: date("2011-03-31")})
	if err != nil {
		t.Fatal(err)
	}
	checkBucket(t, "2011-03-01..2011-03-31", got, exp.ByMonth["2011-03"])
	got, err = q.Summary(ctx, analytics.Filter{From: date("2011-03-27"), To: date("2011-03-27")}) // a DST change
	if err != nil {
		t.Fatal(err)
	}
	checkBucket(t, "2011-03-27", got, exp.ByDay["2011-03-27"])
	got, err = q.Summary(ctx, analytics.Filter{Country: "EIRE"})
	if err != nil {
		t.Fatal(err)
	}
	checkBucket(t, "country EIRE", got, exp.ByCountry["EIRE"])

	// A country within a month, against the per-document expectation.
	want := map[string]*testfixture.Bucket{}
	for _, d := range exp.Docs {
		if d.Country != "France" || d.Month != "2011-05" {
			continue
		}
		b := want[d.Day]
		if b == nil {
			b = &testfixture.Bucket{ByKind: map[schemas.Kind]int{}}
			want[d.Day] = b
		}
		b.Lines += d.Lines
		b.Net = b.Net.Add(d.Total)
		b.ByKind[d.Kind]++
	}
	days, err := q.Breakdown(ctx, analytics.Filter{From: date("2011-05-01"), To: date("2011-05-31"), Country: "France"}, analytics.ByDay)
	if err != nil {
		t.Fatal(err)
	}
	if len(days) != len(want) || len(days) == 0 {
		t.Fatalf("France 2011-05 by day: %d days, want %d", len(days), len(want))
	}
	for _, g := range days {
		w := want[g.Key]
		if w == nil || !g.NetRevenue.Equal(w.Net) || g.Lines != int64(w.Lines) || g.Orders != int64(w.ByKind["sale"]) {
			t.Errorf("France %s: net %s lines %d orders %d, want %+v", g.Key, g.NetRevenue, g.Lines, g.Orders, w)
		}
	}
}

// TestRealFileExactAndIdempotent writes the real file's events through the
// sink, checks every answer against the independent computation from the
// CSV, writes every event a second time (other batch boundaries, no
// OPTIMIZE) and checks that no answer changed.
func TestRealFileExactAndIdempotent(t *testing.T) {
	events := testfixture.RealEvents(t)
	exp := testfixture.ExpectedFromCSV(t)
	cfg := testConfig(t)
	s := newSink(t, cfg)
	start := time.Now()
	writeAll(t, s, events, 5000)
	t.Logf("wrote %d events in %s", len(events), time.Since(start))
	q, _ := newQueries(t, cfg)
	checkAll(t, q, exp)
	checkFilters(t, q, exp)
	checkStatuses(t, cfg, exp)

	writeAll(t, s, events, 7777)
	raw := rawLineCount(t, cfg)
	t.Logf("after the second write: %d physical line rows (no OPTIMIZE; background merges may have collapsed some)", raw)
	checkAll(t, q, exp)
	checkFilters(t, q, exp)
	checkStatuses(t, cfg, exp)
}

func rawLineCount(t *testing.T, cfg analytics.Config) uint64 {
	t.Helper()
	conn, err := analytics.Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	var n uint64
	if err := conn.QueryRow(context.Background(), "SELECT count() FROM `"+cfg.Database+"`.order_lines_g1").Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// checkStatuses checks the orders view: one row per document with the
// status of its last event (sale → paid, credit note → refunded,
// adjustment → placed) and the document's total.
func checkStatuses(t *testing.T, cfg analytics.Config, exp *testfixture.Expected) {
	t.Helper()
	conn, err := analytics.Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	rows, err := conn.Query(context.Background(), "SELECT kind, status, count(), sum(total), max(version) FROM `"+cfg.Database+"`.orders GROUP BY kind, status ORDER BY kind, status")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	got := map[string]string{}
	for rows.Next() {
		var kind, status string
		var n uint64
		var total decimal.Decimal
		var version uint64
		if err := rows.Scan(&kind, &status, &n, &total, &version); err != nil {
			t.Fatal(err)
		}
		got[kind+"/"+status] = fmt.Sprintf("%d %s v%d", n, total.StringFixed(3), version)
	}
	want := map[string]string{
		"sale/paid":            fmt.Sprintf("%d %s v2", exp.Total.Orders, exp.Total.Gross.StringFixed(3)),
		"credit_note/refunded": fmt.Sprintf("%d %s v2", exp.Total.ByKind["credit_note"], exp.Total.Returns.StringFixed(3)),
		"adjustment/placed":    fmt.Sprintf("%d %s v1", exp.Total.ByKind["adjustment"], exp.Total.Adjust.StringFixed(3)),
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("orders by kind/status = %v, want %v", got, want)
	}
}
