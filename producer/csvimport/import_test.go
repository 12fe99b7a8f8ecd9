package csvimport_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/orderstream/orderstream/internal/testenv"
	"github.com/orderstream/orderstream/internal/testfixture"
	"github.com/orderstream/orderstream/producer/command"
	"github.com/orderstream/orderstream/producer/csvimport"
	"github.com/orderstream/orderstream/producer/order"
	"github.com/orderstream/orderstream/producer/store"
	"github.com/orderstream/orderstream/schemas"
	"github.com/shopspring/decimal"
)

// newStore returns a repository on a fresh, migrated database; configure,
// when given, adjusts the pool's configuration.
func newStore(t testing.TB, workers int, configure ...func(*pgxpool.Config)) (*pgxpool.Pool, *store.Repository) {
	t.Helper()
	ctx := context.Background()
	cfg, err := pgxpool.ParseConfig(testenv.NewDatabase(t))
	if err != nil {
		t.Fatal(err)
	}
	cfg.MaxConns = int32(workers + 1)
	for _, fn := range configure {
		fn(cfg)
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	if _, err := store.Migrate(ctx, pool, slog.New(slog.DiscardHandler)); err != nil {
		t.Fatal(err)
	}
	v, err := schemas.NewValidator()
	if err != nil {
		t.Fatal(err)
	}
	return pool, store.NewRepository(pool, v)
}

func importFile(t *testing.T, repo *store.Repository, workers int, r io.Reader) csvimport.Summary {
	t.Helper()
	docs, _, err := csvimport.Collect(r)
	if err != nil {
		t.Fatal(err)
	}
	im, err := csvimport.New(csvimport.Config{Workers: workers}, viaHandler(repo))
	if err != nil {
		t.Fatal(err)
	}
	sum, err := im.Import(context.Background(), docs)
	if err != nil {
		t.Fatalf("import: %v", err)
	}
	return sum
}

func count(t *testing.T, pool *pgxpool.Pool, query string, args ...any) int {
	t.Helper()
	var n int
	if err := pool.QueryRow(context.Background(), query, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	return n
}

// TestImportRealFile imports the whole real file through the write side, as
// `orderstream import` does (streamed, through command.Handler): the main
// job of the project, run in CI.
func TestImportRealFile(t *testing.T) {
	path := testfixture.RealFile(t)
	pool, repo := newStore(t, csvimport.DefaultWorkers)
	start := time.Now()
	im, err := csvimport.New(csvimport.Config{}, viaHandler(repo))
	if err != nil {
		t.Fatal(err)
	}
	sum, st, err := im.ImportStream(context.Background(), csvimport.FileSource(path))
	if err != nil {
		t.Fatalf("import: %v", err)
	}
	if st.Rows != testfixture.RealLines || st.Documents != testfixture.RealDocuments || st.BadRows != 0 {
		t.Errorf("read %+v", st)
	}
	t.Logf("real file: %d documents, %d events, %d lines in %s (%.0f documents/s)",
		sum.Imported, sum.Events, sum.Lines, time.Since(start).Round(time.Millisecond), sum.DocumentsPerSecond())

	if sum.Imported != testfixture.RealDocuments || sum.Failed != 0 || sum.Present != 0 ||
		sum.Events != testfixture.RealEventsN || sum.Lines != testfixture.RealLines {
		t.Fatalf("summary = %+v", sum)
	}
	for _, c := range []struct {
		query string
		want  int
	}{
		{`SELECT count(*) FROM orders`, testfixture.RealDocuments},
		{`SELECT count(*) FROM order_lines`, testfixture.RealLines},
		{`SELECT count(*) FROM outbox`, testfixture.RealEventsN},
		{`SELECT count(*) FROM orders WHERE kind = 'sale' AND status = 'paid'`, testfixture.RealSales},
		{`SELECT count(*) FROM orders WHERE kind = 'credit_note' AND status = 'refunded'`, testfixture.RealCredits},
		{`SELECT count(*) FROM orders WHERE kind = 'adjustment' AND status = 'placed'`, testfixture.RealAdjusts},
		{`SELECT count(*) FROM outbox WHERE event_type = 'order.placed'`, testfixture.RealDocuments},
		{`SELECT count(DISTINCT source_line) FROM order_lines`, testfixture.RealLines},
	} {
		if got := count(t, pool, c.query); got != c.want {
			t.Errorf("%s = %d, want %d", c.query, got, c.want)
		}
	}
	var net decimal.Decimal
	if err := pool.QueryRow(context.Background(), `SELECT sum(quantity * unit_price) FROM order_lines`).Scan(&net); err != nil {
		t.Fatal(err)
	}
	if want := decimal.RequireFromString(testfixture.RealNetGBP); !net.Equal(want) {
		t.Errorf("net revenue in order_lines = %s, want %s", net, want)
	}
}

func TestImportCrafted(t *testing.T) {
	t.Parallel()
	pool, repo := newStore(t, 2)
	ctx := context.Background()
	sum := importFile(t, repo, 2, strings.NewReader(crafted))
	if sum.Imported != 4 || sum.Present != 0 || sum.Failed != 0 || sum.Events != 7 || sum.Lines != 7 {
		t.Fatalf("summary = %+v, want 4 imported, 7 events, 7 lines", sum)
	}

	type orderRow struct {
		number, kind, status, country string
		customer                      *string
		total, paid, refunded         decimal.Decimal
		placedAt                      time.Time
		version                       int64
	}
	rows, err := pool.Query(ctx, `SELECT order_id, order_number, kind, status, customer_id, country, total, paid, refunded, placed_at, version FROM orders`)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]orderRow{}
	for rows.Next() {
		var id string
		var r orderRow
		if err := rows.Scan(&id, &r.number, &r.kind, &r.status, &r.customer, &r.country, &r.total, &r.paid, &r.refunded, &r.placedAt, &r.version); err != nil {
			t.Fatal(err)
		}
		if id != csvimport.OrderID(r.number) {
			t.Errorf("order %s has id %s, want %s", r.number, id, csvimport.OrderID(r.number))
		}
		got[r.number] = r
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	s := func(v string) *string { return &v }
	d := decimal.RequireFromString
	want := map[string]orderRow{
		"536365":  {"536365", "sale", "paid", "United Kingdom", s("17850"), d("35.64"), d("35.64"), d("0"), utc("2010-12-01 08:25:00"), 2},
		"536366":  {"536366", "sale", "paid", "Unspecified", nil, d("11.103"), d("11.103"), d("0"), utc("2010-12-01 08:28:00"), 2},
		"C536379": {"C536379", "credit_note", "refunded", "United Kingdom", s("14527"), d("-55"), d("0"), d("55"), utc("2011-06-01 08:41:00"), 2},
		"A563185": {"A563185", "adjustment", "placed", "United Kingdom", nil, d("-11062.06"), d("0"), d("0"), utc("2011-08-12 13:50:00"), 1},
	}
	if len(got) != len(want) {
		t.Fatalf("orders = %v", got)
	}
	for n, w := range want {
		g := got[n]
		sameCustomer := (g.customer == nil) == (w.customer == nil) && (g.customer == nil || *g.customer == *w.customer)
		if g.kind != w.kind || g.status != w.status || g.country != w.country || !sameCustomer || !g.total.Equal(w.total) ||
			!g.paid.Equal(w.paid) || !g.refunded.Equal(w.refunded) || !g.placedAt.Equal(w.placedAt) || g.version != w.version {
			t.Errorf("order %s = %+v, want %+v", n, g, w)
		}
	}

	// Lines: every row, the repeat included, with its file line and exact price.
	type lineRow struct {
		number   string
		lineNo   int
		source   int
		stock    string
		qty      int64
		price    string
		invoiced time.Time
	}
	lrows, err := pool.Query(ctx, `SELECT o.order_number, l.line_no, l.source_line, l.stock_code, l.quantity, l.unit_price::text, l.invoiced_at
		FROM order_lines l JOIN orders o USING (order_id) ORDER BY l.source_line`)
	if err != nil {
		t.Fatal(err)
	}
	var lines []lineRow
	for lrows.Next() {
		var l lineRow
		if err := lrows.Scan(&l.number, &l.lineNo, &l.source, &l.stock, &l.qty, &l.price, &l.invoiced); err != nil {
			t.Fatal(err)
		}
		lines = append(lines, l)
	}
	wantLines := []lineRow{
		{"536365", 1, 2, "85123A", 6, "2.550000", utc("2010-12-01 08:26:00")},
		{"536365", 2, 3, "71053", 6, "3.390000", utc("2010-12-01 08:25:00")},
		{"536366", 1, 4, "POST", 3, "0.001000", utc("2010-12-01 08:28:00")},
		{"C536379", 1, 5, "D", -1, "27.500000", utc("2011-06-01 08:41:00")},
		{"C536379", 2, 6, "D", -1, "27.500000", utc("2011-06-01 08:41:00")},
		{"A563185", 1, 7, "B", 1, "-11062.060000", utc("2011-08-12 13:50:00")},
		{"536366", 2, 8, "22633", 6, "1.850000", utc("2010-12-01 08:28:00")},
	}
	if len(lines) != len(wantLines) {
		t.Fatalf("lines = %+v", lines)
	}
	for i := range wantLines {
		if g, w := lines[i], wantLines[i]; g.number != w.number || g.lineNo != w.lineNo || g.source != w.source || g.stock != w.stock ||
			g.qty != w.qty || g.price != w.price || !g.invoiced.Equal(w.invoiced) {
			t.Errorf("line %d = %+v, want %+v", i, g, w)
		}
	}

	// Outbox: one row per event, versions 1..n, the envelope valid and equal
	// to its columns.
	v, err := schemas.NewValidator()
	if err != nil {
		t.Fatal(err)
	}
	orows, err := pool.Query(ctx, `SELECT aggregate_id, aggregate_version, event_type, envelope::text FROM outbox ORDER BY aggregate_id, aggregate_version`)
	if err != nil {
		t.Fatal(err)
	}
	types := map[string][]string{}
	for orows.Next() {
		var id, typ, env string
		var version int64
		if err := orows.Scan(&id, &version, &typ, &env); err != nil {
			t.Fatal(err)
		}
		if err := v.Validate([]byte(env)); err != nil {
			t.Errorf("outbox envelope of %s v%d: %v", id, version, err)
		}
		e, err := schemas.ParseEnvelope([]byte(env))
		if err != nil || e.AggregateID != id || e.AggregateVersion != version || e.EventType != typ || e.CausationID == "" {
			t.Errorf("outbox row %s v%d %s: envelope %s (%v)", id, version, typ, env, err)
		}
		if int(version) != len(types[id])+1 {
			t.Errorf("order %s: version %d after %d events", id, version, len(types[id]))
		}
		types[id] = append(types[id], typ)
	}
	wantTypes := map[string]string{
		"536365":  "order.placed,order.paid",
		"536366":  "order.placed,order.paid",
		"C536379": "order.placed,order.refunded",
		"A563185": "order.placed",
	}
	for n, w := range wantTypes {
		if g := strings.Join(types[csvimport.OrderID(n)], ","); g != w {
			t.Errorf("events of %s = %s, want %s", n, g, w)
		}
	}

	// Re-import adds nothing.
	again := importFile(t, repo, 2, strings.NewReader(crafted))
	if again.Imported != 0 || again.Present != 4 || again.Failed != 0 || again.Events != 0 {
		t.Errorf("re-import summary = %+v, want 4 present", again)
	}
	for q, w := range map[string]int{`SELECT count(*) FROM orders`: 4, `SELECT count(*) FROM order_lines`: 7, `SELECT count(*) FROM outbox`: 7} {
		if g := count(t, pool, q); g != w {
			t.Errorf("after re-import %s = %d, want %d", q, g, w)
		}
	}
}

// badFile has good documents around five malformed rows of five documents;
// 536370's second row is fine but its document must not be imported.
const badFile = header +
	"536365,85123A,WHITE HANGING HEART T-LIGHT HOLDER,6,2010-12-01 08:26:00,2.55,17850,United Kingdom\n" + // 2
	"536370,22728,ALARM CLOCK BAKELIKE PINK,abc,2010-12-01 08:45:00,3.75,12583,France\n" + // 3 quantity
	"536370,22727,ALARM CLOCK BAKELIKE RED,24,2010-12-01 08:45:00,3.75,12583,France\n" + // 4 fine
	"536371,22086,PAPER CHAIN KIT,80,2010-13-01 09:00:00,2.55,13748,United Kingdom\n" + // 5 date
	"536372,22632,HAND WARMER RED POLKA DOT,6,2010-12-01 09:01:00,1.8.5,17850,United Kingdom\n" + // 6 price
	"X536373,21730,GLASS STAR FROSTED,6,2010-12-01 09:02:00,4.25,17850,United Kingdom\n" + // 7 prefix
	"536374,21258,VICTORIAN SEWING BOX LARGE,32,2010-12-01 09:09:00,10.95,15100\n" + // 8 columns
	"C536375,D,Discount,-1,2010-12-01 09:41:00,27.50,14527,United Kingdom\n" // 9

func TestImportBadRows(t *testing.T) {
	t.Parallel()
	pool, repo := newStore(t, 2)
	sum := importFile(t, repo, 2, strings.NewReader(badFile))
	if sum.Imported != 2 || sum.Failed != 5 || sum.BadRows != 5 || sum.Events != 4 || sum.Lines != 2 {
		t.Fatalf("summary = %+v, want 2 imported, 5 failed with 5 bad rows", sum)
	}
	wantProblems := []struct {
		number string
		line   int
		column string
	}{
		{"536370", 3, "Quantity"},
		{"536371", 5, "InvoiceDate"},
		{"536372", 6, "UnitPrice"},
		{"X536373", 7, "InvoiceNo"},
		{"536374", 8, "Country"},
	}
	if len(sum.Problems) != len(wantProblems) {
		t.Fatalf("problems = %v", sum.Problems)
	}
	for i, w := range wantProblems {
		p := sum.Problems[i]
		if p.Number != w.number || len(p.Rows) != 1 || p.Rows[0].Line != w.line || p.Rows[0].Column != w.column {
			t.Errorf("problem %d = %v, want document %s line %d column %q", i, p, w.number, w.line, w.column)
		}
	}
	if got := count(t, pool, `SELECT count(*) FROM orders WHERE order_number IN ('536365', 'C536375')`); got != 2 {
		t.Errorf("good documents imported = %d, want 2", got)
	}
	for q, w := range map[string]int{`SELECT count(*) FROM orders`: 2, `SELECT count(*) FROM order_lines`: 2, `SELECT count(*) FROM outbox`: 4} {
		if g := count(t, pool, q); g != w {
			t.Errorf("%s = %d, want %d", q, g, w)
		}
	}
}

// saver is what the tests' stores implement: the repository's Save, maybe
// its WrittenBy.
type saver interface {
	Save(ctx context.Context, o *order.Order, md schemas.Metadata) error
}

// saverStore makes a saver a command.Store for new orders only.
type saverStore struct{ saver }

func (saverStore) Load(_ context.Context, id string) (*order.Order, error) {
	return nil, fmt.Errorf("load %s: %w", id, store.ErrNotFound)
}

func (s saverStore) WrittenBy(ctx context.Context, id, correlationID string) (bool, error) {
	if w, ok := s.saver.(interface {
		WrittenBy(ctx context.Context, id, correlationID string) (bool, error)
	}); ok {
		return w.WrittenBy(ctx, id, correlationID)
	}
	return false, errors.ErrUnsupported
}

// viaHandler returns the command handler the import goes through, on s.
func viaHandler(s saver) *command.Handler {
	return command.NewHandler(saverStore{s}, store.IsConflict)
}
