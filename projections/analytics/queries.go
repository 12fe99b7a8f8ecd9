package analytics

import (
	"context"
	"errors"
	"fmt"
	"math/big"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/orderstream/orderstream/schemas"
	"github.com/shopspring/decimal"
)

// Dashboard metric definitions. Every metric is computed over the lines of
// the documents (orders) whose placed time falls in the filter's range, each
// line counted once however often its event was delivered.
//
//   - Net revenue: Σ quantity × unit price over every line of every document
//     (sales, credit notes and adjustments), GBP, exact.
//   - Gross sales: Σ quantity × unit price over the lines of sale documents.
//     Positive for ordinary sales (a sale may hold negative stock corrections).
//   - Returns: Σ quantity × unit price over the lines of credit notes;
//     NEGATIVE (credit notes have negative quantities), so that
//     net revenue = gross sales + returns + adjustments.
//   - Adjustments: Σ over bad-debt adjustment documents (kind adjustment).
//   - Orders: number of sale documents.
//   - Credit notes: number of credit-note documents.
//   - Average order value (AOV): gross sales / orders, rounded half-even to 3
//     decimals (GBP); 0 when there is no order.
//   - Customers: number of distinct non-empty customer ids over documents of
//     every kind (guest documents have none and are not counted).
//   - Return rate (count): credit notes / orders, half-even to 6 decimals, a
//     fraction (0.173881 = 17.3881 %); 0 when there is no order.
//   - Return rate (value): −returns / gross sales, half-even to 6 decimals;
//     the share of gross sales given back; 0 when gross sales are 0.
//
// Days and months are calendar days and months in Europe/London of the
// order's placed time (occurred_at of its order.placed event), as
// toDate(placed_at, 'Europe/London') computes them.

// Filter restricts a query.
//
// From and To are calendar days, both INCLUSIVE: a document counts when the
// Europe/London date of its placed time d satisfies From <= d <= To. Only
// the year, month and day of each value count (read in the value's own
// location); the zero time leaves that end open. Country, when not empty,
// keeps the documents of exactly that country (as in the data: "United
// Kingdom", "EIRE"). Channel, when not empty, keeps the documents of that
// sales channel: web, phone, marketplace, store, or "unknown"
// (schemas.ChannelUnknown) for those whose order.placed does not say (every
// v1 event and every order of the Online Retail file).
type Filter struct {
	From    time.Time `json:"from,omitzero"`
	To      time.Time `json:"to,omitzero"`
	Country string    `json:"country,omitempty"`
	Channel string    `json:"channel,omitempty"`
}

// Validate reports a range whose end precedes its start and an unknown
// channel (the error names it).
func (f Filter) Validate() error {
	var errs []error
	if !f.From.IsZero() && !f.To.IsZero() && day(f.To) < day(f.From) {
		errs = append(errs, fmt.Errorf("date range %s..%s: the end precedes the start", day(f.From), day(f.To)))
	}
	if f.Channel != "" {
		if _, err := schemas.ParseChannelFilter(f.Channel); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func day(t time.Time) string { return t.Format("2006-01-02") }

// where returns the WHERE clause and its arguments for f.
func (f Filter) where() (string, []any) {
	var conds []string
	var args []any
	if !f.From.IsZero() {
		conds = append(conds, "toDate(placed_at, 'Europe/London') >= toDate('"+day(f.From)+"')")
	}
	if !f.To.IsZero() {
		conds = append(conds, "toDate(placed_at, 'Europe/London') <= toDate('"+day(f.To)+"')")
	}
	if f.Country != "" {
		conds = append(conds, "country = ?")
		args = append(args, f.Country)
	}
	if f.Channel != "" {
		c, _ := schemas.ParseChannelFilter(f.Channel) // checked by Validate
		conds = append(conds, "channel = ?")
		args = append(args, string(c))
	}
	if len(conds) == 0 {
		return "", nil
	}
	return " WHERE " + strings.Join(conds, " AND "), args
}

// Totals are the dashboard metrics of one group (or of the whole range).
// Money in GBP, exact; see the metric definitions above.
type Totals struct {
	NetRevenue        decimal.Decimal `json:"net_revenue"`
	GrossSales        decimal.Decimal `json:"gross_sales"`
	Returns           decimal.Decimal `json:"returns"`
	Adjustments       decimal.Decimal `json:"adjustments"`
	Orders            int64           `json:"orders"`
	CreditNotes       int64           `json:"credit_notes"`
	Customers         int64           `json:"customers"`
	Lines             int64           `json:"lines"`
	AverageOrderValue decimal.Decimal `json:"average_order_value"`
	ReturnRateCount   decimal.Decimal `json:"return_rate_count"`
	ReturnRateValue   decimal.Decimal `json:"return_rate_value"`
}

// Group is the metrics of one day, month, country or channel.
//
// Key is "YYYY-MM-DD" (day), "YYYY-MM" (month), the country name or the
// channel ("unknown" for orders that do not say, schemas.ChannelUnknown).
type Group struct {
	Key string `json:"key"`
	Totals
}

// Dimension is what Breakdown groups by.
type Dimension string

// Dimensions of Breakdown.
const (
	ByDay     Dimension = "day"     // Europe/London calendar day of placed time
	ByMonth   Dimension = "month"   // Europe/London calendar month of placed time
	ByCountry Dimension = "country" // the document's country
	ByChannel Dimension = "channel" // the document's sales channel, "unknown" when not known
)

// Rank orders TopProducts.
type Rank string

// Ranks of TopProducts.
const (
	RankRevenue  Rank = "revenue"  // net revenue, descending
	RankQuantity Rank = "quantity" // net quantity, descending
)

// Product is one stock code's figures over the range.
//
// Description is the description of the product's most recent line in the
// range (latest placed time, ties broken by the greatest description), since
// descriptions of a code change over time. NetRevenue and Quantity are net
// (credit notes subtract); Documents counts the distinct documents of any
// kind (sales, credit notes, adjustments) with a line of this product.
type Product struct {
	StockCode   string          `json:"stock_code"`
	Description string          `json:"description"`
	NetRevenue  decimal.Decimal `json:"net_revenue"`
	Quantity    int64           `json:"quantity"`
	Documents   int64           `json:"documents"`
}

// Queries answers the dashboard's questions from the read model. By default
// it reads the stable views (the serving generation, following cutovers);
// OnGeneration reads one generation's tables directly. Safe for concurrent
// use; ctx cancellation aborts a query.
//
// What each query reads (the reason: the cost of deduplicating grows with
// the rows read, see ARCHITECTURE.md "Dashboard queries that scale"):
//
//   - Summary, Breakdown and HasCountry: the view order_totals, one row per
//     order (about 21 lines per order in the real file). Every figure they
//     give is a sum or count over orders: an order's lines share its kind,
//     customer, country and placed time, its total is the exact sum of its
//     line amounts and its line_count the number of its lines, so summing
//     orders gives the same figures as summing lines.
//   - TopProducts: the generation's top-products rollup product_months for
//     whole months, its order_lines for the other days of the range.
type Queries struct {
	conn   driver.Conn
	db     string
	orders string // table expression of one row per order, deduplicating
	gen    uint32 // generation of OnGeneration; 0: the serving one
}

// New returns Queries over database on conn (see Open). It panics on an
// invalid database name, a programming error (Config.Validate reports it).
func New(conn driver.Conn, database string) *Queries {
	if !identRE.MatchString(database) {
		panic(fmt.Sprintf("analytics.New: invalid database name %q", database))
	}
	return &Queries{conn: conn, db: database, orders: "`" + database + "`.order_totals"}
}

// OnGeneration returns a copy of q that reads generation n's tables (with
// FINAL) instead of the serving views: to check a rebuilt generation
// before the cutover.
func (q *Queries) OnGeneration(n uint32) *Queries {
	c := *q
	c.orders = "`" + q.db + "`.`" + tableName("orders", n) + "` FINAL"
	c.gen = n
	return &c
}

// totalsColumns are the Totals over rows of one order each (order_totals,
// deduplicated): the sums of the orders' totals, the orders counted by kind,
// the distinct customers and the sum of the orders' line counts.
const totalsColumns = `sum(total), sumIf(total, kind = 'sale'), sumIf(total, kind = 'credit_note'),
	sumIf(total, kind = 'adjustment'), countIf(kind = 'sale'), countIf(kind = 'credit_note'),
	uniqExactIf(customer_id, customer_id != ''), sum(toUInt64(line_count))`

// Summary returns the metrics over the whole filter.
func (q *Queries) Summary(ctx context.Context, f Filter) (Totals, error) {
	if err := f.Validate(); err != nil {
		return Totals{}, err
	}
	where, args := f.where()
	var t Totals
	row := q.conn.QueryRow(ctx, "SELECT "+totalsColumns+" FROM "+q.orders+where, args...)
	if err := scanTotals(row, nil, &t); err != nil {
		return Totals{}, fmt.Errorf("totals query: %w", err)
	}
	return t, nil
}

// HasCountry reports whether any order of the read model (the serving
// generation, or q's generation after OnGeneration) has exactly this
// country (case-sensitive, as in the data: "France", "EIRE"). Callers check
// a country filter with it to tell a misspelt country from one without
// documents in the range, which Summary and the others answer with zeros.
func (q *Queries) HasCountry(ctx context.Context, country string) (bool, error) {
	var n uint64
	if err := q.conn.QueryRow(ctx, "SELECT count() FROM "+q.orders+" WHERE country = ?", country).Scan(&n); err != nil {
		return false, fmt.Errorf("country query: %w", err)
	}
	return n > 0, nil
}

type scanner interface{ Scan(dest ...any) error }

func scanTotals(r scanner, key *string, t *Totals) error {
	var orders, credits, customers, lines uint64
	dest := []any{&t.NetRevenue, &t.GrossSales, &t.Returns, &t.Adjustments, &orders, &credits, &customers, &lines}
	if key != nil {
		dest = append([]any{key}, dest...)
	}
	if err := r.Scan(dest...); err != nil {
		return err
	}
	t.Orders, t.CreditNotes, t.Customers, t.Lines = int64(orders), int64(credits), int64(customers), int64(lines)
	t.derive()
	return nil
}

// derive computes the ratios from the sums and counts.
func (t *Totals) derive() {
	t.AverageOrderValue = DivHalfEven(t.GrossSales, decimal.NewFromInt(t.Orders), 3)
	t.ReturnRateCount = DivHalfEven(decimal.NewFromInt(t.CreditNotes), decimal.NewFromInt(t.Orders), 6)
	t.ReturnRateValue = DivHalfEven(t.Returns.Neg(), t.GrossSales, 6)
}

// DivHalfEven returns a / b rounded half-to-even to places decimals, exact
// (no intermediate rounding); 0 when b is 0.
func DivHalfEven(a, b decimal.Decimal, places int32) decimal.Decimal {
	if b.IsZero() {
		return decimal.New(0, -places)
	}
	r := new(big.Rat).Quo(a.Rat(), b.Rat())
	scale := new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(places)), nil)
	r.Mul(r, new(big.Rat).SetInt(scale))
	num, den := r.Num(), r.Denom()                      // den > 0
	q, m := new(big.Int).DivMod(num, den, new(big.Int)) // floor division, 0 <= m < den
	twice := new(big.Int).Lsh(m, 1)
	switch c := twice.Cmp(den); {
	case c > 0, c == 0 && q.Bit(0) == 1:
		q.Add(q, big.NewInt(1))
	}
	return decimal.NewFromBigInt(q, -places)
}

// Breakdown returns the metrics per day, month, country or channel, ordered
// by key.
// Groups without any document are absent.
func (q *Queries) Breakdown(ctx context.Context, f Filter, by Dimension) ([]Group, error) {
	if err := f.Validate(); err != nil {
		return nil, err
	}
	var key string
	switch by {
	case ByDay:
		key = "toString(toDate(placed_at, 'Europe/London'))"
	case ByMonth:
		key = "substring(toString(toStartOfMonth(placed_at, 'Europe/London')), 1, 7)"
	case ByCountry:
		key = "country"
	case ByChannel:
		key = "if(channel = '', '" + schemas.ChannelUnknown + "', channel)"
	default:
		return nil, fmt.Errorf("breakdown by %q: want day, month, country or channel", by)
	}
	where, args := f.where()
	rows, err := q.conn.Query(ctx, "SELECT "+key+" AS k, "+totalsColumns+" FROM "+q.orders+where+" GROUP BY k ORDER BY k", args...)
	if err != nil {
		return nil, fmt.Errorf("breakdown query by %s: %w", by, err)
	}
	defer rows.Close()
	var out []Group
	for rows.Next() {
		var g Group
		if err := scanTotals(rows, &g.Key, &g.Totals); err != nil {
			return nil, fmt.Errorf("breakdown query by %s: %w", by, err)
		}
		out = append(out, g)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("breakdown query by %s: %w", by, err)
	}
	return out, nil
}

// ErrLimit is returned for a TopProducts limit outside 1..10000.
var ErrLimit = errors.New("limit must be between 1 and 10000")

// TopProducts returns the limit products ranked by net revenue or net
// quantity (descending, ties by stock code ascending).
//
// It reads one generation's tables (the serving one, or q's after
// OnGeneration): the rollup product_months for the whole Europe/London
// months of the filter, and order_lines (FINAL, only the partitions of
// those days) for the days of the filter outside whole months, then adds
// them up per stock code. Both parts hold the same figures a query over the
// deduplicated lines gives (see the migration generation/0002), so the
// answer is that query's; its cost follows the months and products of the
// range, plus at most two partial months of lines. With a Channel filter
// (the rollup has no channel) it reads the lines of the whole range.
func (q *Queries) TopProducts(ctx context.Context, f Filter, by Rank, limit int) ([]Product, error) {
	if err := f.Validate(); err != nil {
		return nil, err
	}
	if limit < 1 || limit > 10000 {
		return nil, fmt.Errorf("top products limit %d: %w", limit, ErrLimit)
	}
	var order string
	switch by {
	case RankRevenue:
		order = "revenue DESC, stock_code"
	case RankQuantity:
		order = "qty DESC, stock_code"
	default:
		return nil, fmt.Errorf("top products by %q: want revenue or quantity", by)
	}
	gen := q.gen
	if gen == 0 {
		var err error
		if gen, err = q.serving(ctx); err != nil {
			return nil, fmt.Errorf("top products query: %w", err)
		}
	}
	out, err := q.topProducts(ctx, gen, f, order, limit)
	if err != nil && q.gen == 0 {
		// The generation read may have been retired and dropped since it was
		// looked up: ask once more on the one serving now.
		if now, serr := q.serving(ctx); serr == nil && now != gen {
			out, err = q.topProducts(ctx, now, f, order, limit)
		}
	}
	return out, err
}

func (q *Queries) topProducts(ctx context.Context, gen uint32, f Filter, order string, limit int) ([]Product, error) {
	plan := planTopProducts(f)
	var parts []string
	var args []any
	if f.Channel != "" {
		// The rollup has no channel: the lines of the whole range.
		plan = topProductsPlan{}
		where, wargs := f.where()
		args = append(args, wargs...)
		parts = append(parts, `SELECT stock_code, argMax(description, (placed_at, description)) AS p_desc, max(placed_at) AS p_last,
			sum(amount) AS p_amount, sum(quantity) AS p_qty, uniqExact(order_id) AS p_docs
			FROM `+q.table("order_lines", gen)+` FINAL`+where+` GROUP BY stock_code`)
	}
	country := func(conds []string) []string {
		if f.Country != "" {
			conds = append(conds, "country = ?")
			args = append(args, f.Country)
		}
		return conds
	}
	if plan.rollup {
		var conds []string
		if c := plan.rollupCondition(); c != "" {
			conds = append(conds, c)
		}
		conds = country(conds)
		where := ""
		if len(conds) > 0 {
			where = " WHERE " + strings.Join(conds, " AND ")
		}
		parts = append(parts, `SELECT stock_code, description AS p_desc, last_placed AS p_last, amount AS p_amount,
			quantity AS p_qty, documents AS p_docs
			FROM `+q.table("product_months", gen)+` FINAL`+where)
	}
	if len(plan.lines) > 0 {
		ranges := make([]string, len(plan.lines))
		for i, r := range plan.lines {
			ranges[i] = r.condition()
		}
		conds := country([]string{"(" + strings.Join(ranges, " OR ") + ")"})
		parts = append(parts, `SELECT stock_code, argMax(description, (placed_at, description)) AS p_desc, max(placed_at) AS p_last,
			sum(amount) AS p_amount, sum(quantity) AS p_qty, uniqExact(order_id) AS p_docs
			FROM `+q.table("order_lines", gen)+` FINAL WHERE `+strings.Join(conds, " AND ")+` GROUP BY stock_code`)
	}
	rows, err := q.conn.Query(ctx, fmt.Sprintf(`SELECT stock_code, argMax(p_desc, (p_last, p_desc)),
		sum(p_amount) AS revenue, sum(p_qty) AS qty, sum(p_docs)
		FROM (%s) AS parts GROUP BY stock_code ORDER BY %s LIMIT %d`, strings.Join(parts, "\n\t\tUNION ALL\n\t\t"), order, limit), args...)
	if err != nil {
		return nil, fmt.Errorf("top products query on generation %d: %w", gen, err)
	}
	defer rows.Close()
	var out []Product
	for rows.Next() {
		var p Product
		var docs uint64
		if err := rows.Scan(&p.StockCode, &p.Description, &p.NetRevenue, &p.Quantity, &docs); err != nil {
			return nil, fmt.Errorf("top products query: %w", err)
		}
		p.Documents = int64(docs)
		out = append(out, p)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("top products query: %w", err)
	}
	return out, nil
}

// table returns the quoted name of generation gen's table base.
func (q *Queries) table(base string, gen uint32) string {
	return "`" + q.db + "`.`" + tableName(base, gen) + "`"
}
