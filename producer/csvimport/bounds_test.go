package csvimport_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/orderstream/orderstream/consumers"
	"github.com/orderstream/orderstream/internal/testenv"
	"github.com/orderstream/orderstream/producer/csvimport"
	"github.com/orderstream/orderstream/projections/analytics"
	"github.com/orderstream/orderstream/projections/search"
	"github.com/orderstream/orderstream/schemas"
	"github.com/shopspring/decimal"
)

// boundsFile returns documents with every value at a bound of the event
// contract (schemas/limits.go; derived from its constants, so a bound moved
// beyond what a store holds fails here), then documents one past a bound.
func boundsFile() string {
	london, err := time.LoadLocation("Europe/London")
	if err != nil {
		panic(err)
	}
	local := func(t time.Time) string { return t.In(london).Format(csvimport.DateLayout) }
	maxPrice := schemas.MaxAmount().String()
	creditPrice := decimal.New(schemas.MaxAmountMilli/1000, -schemas.MoneyScale).String() // × 1000 = the most negative line
	rows := []string{
		// 2: the largest unit price, line amount, total and paid amount
		"700001,MAXPRICE,MAX,1,2011-01-02 10:00:00," + maxPrice + ",12345,France",
		// 3: the most negative line amount of a credit note, refunded in full
		"C700002,CREDIT,CREDIT,-1000,2011-01-02 10:00:00," + creditPrice + ",12345,France",
		// 4-6: running total +max, 0, −max: the most negative total
		"A700003,ADJ,ADJ,1,2011-01-02 10:00:00," + maxPrice + ",,France",
		"A700003,ADJ,ADJ,-1,2011-01-02 10:00:00," + maxPrice + ",,France",
		"A700003,ADJ,ADJ,-1,2011-01-02 10:00:00," + maxPrice + ",,France",
		// 7-8: the largest quantity, twice (summed per product by analytics)
		fmt.Sprintf("700004,MAXQTY,QTY,%d,2011-01-02 10:00:00,0.001,12345,France", schemas.MaxQuantity),
		fmt.Sprintf("700004,MAXQTY,QTY,%d,2011-01-02 10:00:00,0,12345,France", schemas.MaxQuantity),
		// 9: the earliest time (the UK kept BST all year in 1970)
		"700005,EARLY,EARLY,1," + local(schemas.MinTime()) + ",1,12345,France",
		// 10: the latest time, the longest texts (of 3- and 2-byte characters)
		"700006," + strings.Repeat("S", schemas.MaxStockCode) + "," + strings.Repeat("€", schemas.MaxDescription) + ",1," +
			local(schemas.MaxTime()) + ",1,12345," + strings.Repeat("é", schemas.MaxCountry),
		// 11-15: one past a bound each
		"700007,P,P,1,2011-01-02 10:00:00," + schemas.MaxAmount().Add(decimal.New(1, -schemas.MoneyScale)).String() + ",12345,France",
		"700008,P,P,1000,2011-01-02 10:00:00,1000000000000,12345,France", // issue 10: dead-lettered by analytics, indexed by search
		fmt.Sprintf("700009,P,P,%d,2011-01-02 10:00:00,0.001,12345,France", schemas.MaxQuantity+1),
		"700010,P,P,1," + local(schemas.MinTime().Add(-time.Second)) + ",1,12345,France",
		"700011,P," + strings.Repeat("x", schemas.MaxDescription+1) + ",1,2011-01-02 10:00:00,1,12345,France",
	}
	return header + strings.Join(rows, "\n") + "\n"
}

// TestBoundsAgreeAcrossReadModels imports values at every bound through the
// write side (PostgreSQL), writes the events as the relay stored them into
// both read models (ClickHouse and OpenSearch) and checks that every figure
// is equal everywhere; values one past a bound are refused by the import,
// each naming its line and column, and reach no read model.
func TestBoundsAgreeAcrossReadModels(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	pool, repo := newStore(t, 2)
	docs, _, err := csvimport.Collect(strings.NewReader(boundsFile()))
	if err != nil {
		t.Fatal(err)
	}
	im, err := csvimport.New(csvimport.Config{Workers: 2}, viaHandler(repo))
	if err != nil {
		t.Fatal(err)
	}
	sum, err := im.Import(ctx, docs)
	if err != nil {
		t.Fatal(err)
	}
	wantRefused := map[string]string{
		"700007": "line 11: column UnitPrice", "700008": "line 12: column UnitPrice", "700009": "line 13: column Quantity",
		"700010": "line 14: column InvoiceDate", "700011": "line 15: column Description",
	}
	if sum.Imported != 6 || sum.Failed != len(wantRefused) {
		t.Fatalf("summary %+v: want 6 imported, %d refused", sum, len(wantRefused))
	}
	for _, p := range sum.Problems {
		if w, ok := wantRefused[p.Number]; !ok || !strings.Contains(p.Error(), w) {
			t.Errorf("refused %v, want %q", p, w)
		}
	}

	// The events as the outbox holds them, byte for byte.
	rows, err := pool.Query(ctx, `SELECT envelope::text FROM outbox ORDER BY id`)
	if err != nil {
		t.Fatal(err)
	}
	var recs []consumers.Record
	for rows.Next() {
		var raw string
		if err := rows.Scan(&raw); err != nil {
			t.Fatal(err)
		}
		e, err := schemas.ParseEnvelope([]byte(raw))
		if err != nil {
			t.Fatal(err)
		}
		recs = append(recs, consumers.Record{Topic: "orders", Offset: int64(len(recs)), Key: []byte(e.AggregateID), Event: e})
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}

	// Analytics (ClickHouse).
	acfg := analytics.Config{Addr: testenv.ClickHouseAddr(t), Database: testenv.Name("bounds")}
	asink, err := analytics.NewSink(acfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = asink.Close() })
	conn, err := analytics.Open(acfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = conn.Exec(context.Background(), "DROP DATABASE IF EXISTS `"+acfg.Database+"`")
		_ = conn.Close()
	})
	if err := asink.Write(ctx, recs); err != nil {
		t.Fatalf("analytics refused events the write side accepted: %v", err)
	}

	// Search (OpenSearch).
	eng, err := search.NewEngine(search.EngineConfig{Kind: search.EngineOpenSearch, URL: testenv.SearchURL(t)})
	if err != nil {
		t.Fatal(err)
	}
	scfg := search.Config{Engine: eng, Prefix: testenv.Name("bounds")}
	admin, err := search.NewAdmin(scfg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := admin.Setup(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = admin.DropAll(context.Background()) })
	ssink, err := search.NewSink(search.SinkConfig{Config: scfg})
	if err != nil {
		t.Fatal(err)
	}
	if err := ssink.Write(ctx, recs); err != nil {
		t.Fatalf("search refused events the write side accepted: %v", err)
	}
	if err := admin.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	q, err := search.NewQuery(scfg)
	if err != nil {
		t.Fatal(err)
	}

	// Every order: the write side's figures = analytics' = search's.
	type figures struct {
		total, paid, refunded decimal.Decimal
		placed                time.Time
		lines                 int
		quantity              int64
	}
	wantNet := decimal.Zero
	prows, err := pool.Query(ctx, `SELECT o.order_id, o.order_number, o.total, o.paid, o.refunded, o.placed_at, count(*), sum(l.quantity)
		FROM orders o JOIN order_lines l USING (order_id) GROUP BY o.order_id ORDER BY o.order_number`)
	if err != nil {
		t.Fatal(err)
	}
	write := map[string]figures{}
	numbers := map[string]string{}
	for prows.Next() {
		var id, number string
		var f figures
		if err := prows.Scan(&id, &number, &f.total, &f.paid, &f.refunded, &f.placed, &f.lines, &f.quantity); err != nil {
			t.Fatal(err)
		}
		write[id], numbers[id] = f, number
		wantNet = wantNet.Add(f.total)
	}
	if err := prows.Err(); err != nil || len(write) != 6 {
		t.Fatalf("write side: %d orders, %v", len(write), err)
	}
	// Analytics, table by table (ClickHouse 18.16 joins one table per query).
	type arow struct {
		total, amount decimal.Decimal
		lines         uint64
		placed        time.Time
		qty           int64
	}
	got := map[string]*arow{}
	for id := range write {
		got[id] = &arow{}
	}
	db := "`" + acfg.Database + "`."
	each := func(sql string, fn func(scan func(...any) error) error) {
		t.Helper()
		rows, err := conn.Query(ctx, sql)
		if err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
		defer rows.Close()
		for rows.Next() {
			if err := fn(rows.Scan); err != nil {
				t.Fatalf("%s: %v", sql, err)
			}
		}
		if err := rows.Err(); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}
	var id string
	var r arow
	each("SELECT order_id, total, toUInt64(line_count), placed_at FROM "+db+"orders", func(scan func(...any) error) error {
		err := scan(&id, &r.total, &r.lines, &r.placed)
		if a := got[id]; a != nil {
			a.total, a.lines, a.placed = r.total, r.lines, r.placed
		}
		return err
	})
	each("SELECT order_id, argMax(amount, version) FROM "+db+"order_status GROUP BY order_id", func(scan func(...any) error) error {
		err := scan(&id, &r.amount)
		if a := got[id]; a != nil {
			a.amount = r.amount
		}
		return err
	})
	each("SELECT order_id, sum(quantity) FROM "+db+"order_lines GROUP BY order_id", func(scan func(...any) error) error {
		err := scan(&id, &r.qty)
		if a := got[id]; a != nil {
			a.qty = r.qty
		}
		return err
	})
	for id, w := range write {
		a := got[id]
		if !a.total.Equal(w.total) || !a.amount.Equal(w.paid.Add(w.refunded)) || int(a.lines) != w.lines || !a.placed.Equal(w.placed) || a.qty != w.quantity {
			t.Errorf("analytics %s: total %s, paid/refunded %s, %d lines, placed %s, quantity %d; write side %+v",
				numbers[id], a.total, a.amount, a.lines, a.placed, a.qty, w)
		}

		o, err := q.Get(ctx, id)
		if err != nil {
			t.Fatalf("search %s: %v", numbers[id], err)
		}
		var sq int64
		for _, l := range o.Lines {
			sq += l.Quantity
		}
		if !o.Total.Equal(w.total) || o.TotalMilli != w.total.Shift(3).IntPart() || !o.Paid.Equal(w.paid) || !o.Refunded.Equal(w.refunded) ||
			o.LineCount != w.lines || !o.PlacedAt.Equal(w.placed) || sq != w.quantity {
			t.Errorf("search %s: total %s (milli %d), paid %s, refunded %s, %d lines, placed %s, quantity %d; write side %+v",
				numbers[id], o.Total, o.TotalMilli, o.Paid, o.Refunded, o.LineCount, o.PlacedAt, sq, w)
		}
	}

	// Sums: analytics' net revenue and quantity per product are exact.
	aq := analytics.New(conn, acfg.Database)
	tot, err := aq.Summary(ctx, analytics.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	if !tot.NetRevenue.Equal(wantNet) || tot.Lines != 9 {
		t.Errorf("analytics net revenue %s over %d lines, want %s over 9", tot.NetRevenue, tot.Lines, wantNet)
	}
	top, err := aq.TopProducts(ctx, analytics.Filter{}, analytics.RankQuantity, 1)
	if err != nil {
		t.Fatal(err)
	}
	if len(top) != 1 || top[0].StockCode != "MAXQTY" || top[0].Quantity != 2*schemas.MaxQuantity {
		t.Errorf("top product by quantity = %+v, want MAXQTY with %d", top, 2*schemas.MaxQuantity)
	}
}
