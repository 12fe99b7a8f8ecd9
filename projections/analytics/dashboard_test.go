package analytics_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/orderstream/orderstream/internal/testfixture"
	"github.com/orderstream/orderstream/projections/analytics"
	"github.com/orderstream/orderstream/schemas"
	"github.com/shopspring/decimal"
)

// everyTenthOrder returns the events of every tenth document of the real
// file (all thirteen months, each kind) and the documents' ids in order.
func everyTenthOrder(t *testing.T) ([]schemas.Envelope, []string) {
	t.Helper()
	var out []schemas.Envelope
	var ids []string
	n := -1
	last := ""
	for _, e := range testfixture.RealEvents(t) {
		if e.AggregateID != last {
			last = e.AggregateID
			n++
			if n%10 == 0 {
				ids = append(ids, e.AggregateID)
			}
		}
		if n%10 == 0 {
			out = append(out, e)
		}
	}
	return out, ids
}

// linesOracle answers the dashboard's questions the way they were answered
// before the order-level view and the rollup: straight from the
// deduplicated lines (the view order_lines). The read paths must give the
// same figures.
type linesOracle struct {
	conn driver.Conn
	db   string
}

func (o linesOracle) where(f analytics.Filter) (string, []any) {
	var conds []string
	var args []any
	if !f.From.IsZero() {
		conds = append(conds, "toDate(placed_at, 'Europe/London') >= toDate('"+f.From.Format(time.DateOnly)+"')")
	}
	if !f.To.IsZero() {
		conds = append(conds, "toDate(placed_at, 'Europe/London') <= toDate('"+f.To.Format(time.DateOnly)+"')")
	}
	if f.Country != "" {
		conds = append(conds, "country = ?")
		args = append(args, f.Country)
	}
	if len(conds) == 0 {
		return "", nil
	}
	return " WHERE " + strings.Join(conds, " AND "), args
}

// groups returns key → the sums and counts of Totals (as text), over the
// lines grouped by key ("'all'" for Summary).
func (o linesOracle) groups(t testing.TB, f analytics.Filter, key string) map[string]string {
	t.Helper()
	where, args := o.where(f)
	rows, err := o.conn.Query(context.Background(), "SELECT toString("+key+") AS k, toString(sum(amount)), toString(sumIf(amount, kind = 'sale')), "+
		"toString(sumIf(amount, kind = 'credit_note')), toString(sumIf(amount, kind = 'adjustment')), "+
		"uniqExactIf(order_id, kind = 'sale'), uniqExactIf(order_id, kind = 'credit_note'), uniqExactIf(customer_id, customer_id != ''), count() "+
		"FROM `"+o.db+"`.order_lines"+where+" GROUP BY k", args...)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := map[string]string{}
	for rows.Next() {
		var k, net, gross, ret, adj string
		var orders, credits, customers, lines uint64
		if err := rows.Scan(&k, &net, &gross, &ret, &adj, &orders, &credits, &customers, &lines); err != nil {
			t.Fatal(err)
		}
		out[k] = fmt.Sprintf("net %s gross %s returns %s adjustments %s orders %d credit notes %d customers %d lines %d",
			dec(net), dec(gross), dec(ret), dec(adj), orders, credits, customers, lines)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func dec(s string) string { return decimal.RequireFromString(s).StringFixed(3) }

func totalsText(t analytics.Totals) string {
	return fmt.Sprintf("net %s gross %s returns %s adjustments %s orders %d credit notes %d customers %d lines %d",
		t.NetRevenue.StringFixed(3), t.GrossSales.StringFixed(3), t.Returns.StringFixed(3), t.Adjustments.StringFixed(3),
		t.Orders, t.CreditNotes, t.Customers, t.Lines)
}

// products returns the first limit (0: every) products' figures over the
// lines, ranked as TopProducts ranks them.
func (o linesOracle) products(t testing.TB, f analytics.Filter, by analytics.Rank, limit int) []analytics.Product {
	t.Helper()
	where, args := o.where(f)
	order := "revenue DESC, stock_code"
	if by == analytics.RankQuantity {
		order = "qty DESC, stock_code"
	}
	rows, err := o.conn.Query(context.Background(), `SELECT stock_code, argMax(description, (placed_at, description)),
		sum(amount) AS revenue, sum(quantity) AS qty, uniqExact(order_id)
		FROM `+"`"+o.db+"`.order_lines"+where+" GROUP BY stock_code ORDER BY "+order+limitClause(limit), args...)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []analytics.Product
	for rows.Next() {
		var p analytics.Product
		var docs uint64
		if err := rows.Scan(&p.StockCode, &p.Description, &p.NetRevenue, &p.Quantity, &docs); err != nil {
			t.Fatal(err)
		}
		p.Documents = int64(docs)
		out = append(out, p)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func limitClause(n int) string {
	if n == 0 {
		return ""
	}
	return fmt.Sprintf(" LIMIT %d", n)
}

func productsJSON(t *testing.T, ps []analytics.Product) string {
	t.Helper()
	for i := range ps {
		ps[i].NetRevenue = decimal.RequireFromString(ps[i].NetRevenue.StringFixed(3))
	}
	b, err := json.Marshal(ps)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// checkAgainstLines compares every dashboard answer of q with the lines
// oracle, for filters that cover whole months, partial months at either
// end, one day, open ends and countries.
func checkAgainstLines(t *testing.T, stage string, q *analytics.Queries, o linesOracle) {
	t.Helper()
	ctx := context.Background()
	day := func(s string) time.Time {
		v, err := time.Parse(time.DateOnly, s)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	filters := map[string]analytics.Filter{
		"everything":             {},
		"one month":              {From: day("2011-11-01"), To: day("2011-11-30")},
		"partial months":         {From: day("2011-01-15"), To: day("2011-04-10")},
		"within a month":         {From: day("2011-05-03"), To: day("2011-05-17")},
		"a DST day":              {From: day("2011-03-27"), To: day("2011-03-27")},
		"open start":             {To: day("2011-06-20")},
		"open end":               {From: day("2011-09-09")},
		"country":                {Country: "France"},
		"country, partial month": {From: day("2011-05-10"), To: day("2011-07-31"), Country: "Germany"},
	}
	for name, f := range filters {
		sum, err := q.Summary(ctx, f)
		if err != nil {
			t.Fatalf("%s: Summary(%s): %v", stage, name, err)
		}
		if got, want := totalsText(sum), o.groups(t, f, "'all'")["all"]; want != "" && got != want {
			t.Errorf("%s: Summary(%s) = %s\nlines say %s", stage, name, got, want)
		}
		for by, key := range map[analytics.Dimension]string{
			analytics.ByDay:     "toDate(placed_at, 'Europe/London')",
			analytics.ByMonth:   "substring(toString(toStartOfMonth(placed_at, 'Europe/London')), 1, 7)",
			analytics.ByCountry: "country",
		} {
			groups, err := q.Breakdown(ctx, f, by)
			if err != nil {
				t.Fatalf("%s: Breakdown(%s, %s): %v", stage, name, by, err)
			}
			want := o.groups(t, f, key)
			if len(groups) != len(want) {
				t.Errorf("%s: Breakdown(%s, %s): %d groups, lines say %d", stage, name, by, len(groups), len(want))
			}
			for _, g := range groups {
				if got := totalsText(g.Totals); got != want[g.Key] {
					t.Errorf("%s: Breakdown(%s, %s) %s = %s\nlines say %s", stage, name, by, g.Key, got, want[g.Key])
				}
			}
		}
		for _, by := range []analytics.Rank{analytics.RankRevenue, analytics.RankQuantity} {
			got, err := q.TopProducts(ctx, f, by, 10000)
			if err != nil {
				t.Fatalf("%s: TopProducts(%s, %s): %v", stage, name, by, err)
			}
			if g, w := productsJSON(t, got), productsJSON(t, o.products(t, f, by, 0)); g != w {
				t.Errorf("%s: TopProducts(%s, %s) differs from the lines:\n got %.600s\nwant %.600s", stage, name, by, g, w)
			}
		}
	}
}

// TestDashboardExactUnderRedelivery: the order-level view and the
// top-products rollup give the figures of the deduplicated lines after a
// first write, after the same orders were redelivered at their different
// versions (the later event alone first, then order.placed again, then
// both, from another sink), and after two sinks wrote every event again at
// the same time with other batch boundaries (each recomputing the rollup
// of the months it touched while the other inserts: the race a rebuild and
// the daemons run).
func TestDashboardExactUnderRedelivery(t *testing.T) {
	events, ids := everyTenthOrder(t)
	cfg := testConfig(t)
	a, b := newSink(t, cfg), newSink(t, cfg)
	writeAll(t, a, events, 700)
	q, _ := newQueries(t, cfg)
	conn, err := analytics.Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	o := linesOracle{conn: conn, db: cfg.Database}
	checkAgainstLines(t, "first write", q, o)
	before, err := q.TopProducts(context.Background(), analytics.Filter{}, analytics.RankRevenue, 50)
	if err != nil {
		t.Fatal(err)
	}

	// Redelivery of the first 300 orders at each of their versions.
	redelivered := map[string]bool{}
	for _, id := range ids[:300] {
		redelivered[id] = true
	}
	var placed, later []schemas.Envelope
	for _, e := range events {
		if !redelivered[e.AggregateID] {
			continue
		}
		if e.EventType == schemas.TypeOrderPlaced {
			placed = append(placed, e)
		} else {
			later = append(later, e)
		}
	}
	if len(later) == 0 {
		t.Fatal("no later versions among the redelivered orders")
	}
	writeAll(t, b, later, 90)
	writeAll(t, b, placed, 130)
	writeAll(t, b, append(append([]schemas.Envelope{}, later...), placed...), 1000)
	checkAgainstLines(t, "after redelivery at other versions", q, o)

	// Two writers at once, every event again.
	var wg sync.WaitGroup
	for i, s := range []*analytics.Sink{a, b} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx := context.Background()
			recs := records(events)
			n := []int{1000, 333}[i]
			for lo := 0; lo < len(recs); lo += n {
				if err := s.Write(ctx, recs[lo:min(lo+n, len(recs))]); err != nil {
					t.Errorf("sink %d: Write: %v", i, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	checkAgainstLines(t, "after two concurrent writers", q, o)
	after, err := q.TopProducts(context.Background(), analytics.Filter{}, analytics.RankRevenue, 50)
	if err != nil {
		t.Fatal(err)
	}
	if productsJSON(t, after) != productsJSON(t, before) {
		t.Errorf("top products changed by redelivery:\n got %v\nwant %v", after, before)
	}
	var raw, dedup uint64
	if err := conn.QueryRow(context.Background(), "SELECT count() FROM `"+cfg.Database+"`.product_months_g1").Scan(&raw); err != nil {
		t.Fatal(err)
	}
	if err := conn.QueryRow(context.Background(), "SELECT count() FROM `"+cfg.Database+"`.product_months").Scan(&dedup); err != nil {
		t.Fatal(err)
	}
	t.Logf("rollup rows: %d stored (every recomputation, before merges), %d deduplicated", raw, dedup)
}

// TestRollupFilledForAnEarlierGeneration: a generation whose lines were
// written before the rollup existed (here: its rollup emptied) gets its
// top products back from the migration's fill, equal to the lines'.
func TestRollupFilledForAnEarlierGeneration(t *testing.T) {
	events, _ := everyTenthOrder(t)
	cfg := testConfig(t)
	writeAll(t, newSink(t, cfg), events[:len(events)/2], 1000)
	q, _ := newQueries(t, cfg)
	conn, err := analytics.Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx := context.Background()
	o := linesOracle{conn: conn, db: cfg.Database}
	if err := conn.Exec(ctx, "TRUNCATE TABLE `"+cfg.Database+"`.product_months_g1"); err != nil {
		t.Fatal(err)
	}
	partial := analytics.Filter{From: time.Date(2011, 1, 15, 0, 0, 0, 0, time.UTC), To: time.Date(2011, 4, 10, 0, 0, 0, 0, time.UTC)}
	if got, err := q.TopProducts(ctx, analytics.Filter{}, analytics.RankRevenue, 10000); err != nil || len(got) != 0 {
		t.Fatalf("top products of an empty rollup: %d products, %v; want none (the test must see the fill)", len(got), err)
	}
	if err := analytics.FillRollup(ctx, conn, cfg.Database, 1); err != nil {
		t.Fatal(err)
	}
	for name, f := range map[string]analytics.Filter{"everything": {}, "partial months": partial} {
		got, err := q.TopProducts(ctx, f, analytics.RankRevenue, 10000)
		if err != nil {
			t.Fatal(err)
		}
		if g, w := productsJSON(t, got), productsJSON(t, o.products(t, f, analytics.RankRevenue, 0)); g != w {
			t.Errorf("%s: top products after the fill differ from the lines:\n got %.600s\nwant %.600s", name, g, w)
		}
	}
}
