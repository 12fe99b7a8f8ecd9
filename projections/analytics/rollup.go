package analytics

import (
	"slices"
	"strings"
	"time"
)

// The top-products rollup (table product_months_g<n>, migration
// generation/0002): per Europe/London month, country and stock code, the
// figures TopProducts needs, recomputed by the Sink from the deduplicated
// lines of every month a batch's lines fall in. The migration's comment
// says why it is exact under redelivery and replay; TopProducts reads it for
// whole months and the lines only for the days of a range that do not make
// a whole month.

// rollupInsert returns the INSERT ... SELECT that recomputes the rows of
// rollup (a product_months table) from lines (the order_lines table of the
// same generation, read with FINAL) for the lines matching where ("" for
// every line; the condition must select whole months). Each row carries as
// version the number of lines of its key it read. It is the statement of
// migration generation/0002 with a condition
// (TestRollupInsertIsTheMigrations). (A per-month version gathered with
// groupArray over tuples holding the Decimal(38, 3) sums crashes ClickHouse
// 18.16's server: ColumnDecimal<Decimal128>::deserializeAndInsertFromArena.)
func rollupInsert(lines, rollup, where string) string {
	if where != "" {
		where = "WHERE " + where + "\n"
	}
	return `INSERT INTO ` + rollup + `
    (placed_month, country, stock_code, description, last_placed, amount, quantity, documents, lines_seen)
SELECT toStartOfMonth(placed_at, 'Europe/London') AS pm, country AS c, stock_code AS sc,
    argMax(description, (placed_at, description)), max(placed_at), sum(amount), sum(quantity), uniqExact(order_id), count()
FROM ` + lines + ` FINAL
` + where + `GROUP BY pm, c, sc`
}

// month is the first day of a calendar month (UTC midnight, as a civil date).
type month = time.Time

// linesMonths returns the calendar months (ascending) the Europe/London
// month of each line's placed time can be: the UTC month of the time and of
// one hour later (London is UTC or UTC+1), so no time zone database is
// needed here; a month without lines recomputes to nothing.
func linesMonths(rows []LineRow) []month {
	seen := map[month]bool{}
	var out []month
	add := func(t time.Time) {
		m := time.Date(t.Year(), t.Month(), 1, 0, 0, 0, 0, time.UTC)
		if !seen[m] {
			seen[m] = true
			out = append(out, m)
		}
	}
	for i := range rows {
		t := rows[i].PlacedAt.UTC()
		add(t)
		add(t.Add(time.Hour))
	}
	slices.SortFunc(out, func(a, b month) int { return a.Compare(b) })
	return out
}

// monthsCondition selects the lines of the given Europe/London months: the
// exact test on toStartOfMonth, and bounds on placed_at (each month from an
// hour before its UTC start) so that the server reads only their partitions.
func monthsCondition(months []month) string {
	ranges := make([]string, len(months))
	dates := make([]string, len(months))
	for i, m := range months {
		ranges[i] = "(placed_at >= " + utcLiteral(m.Add(-time.Hour)) + " AND placed_at < " + utcLiteral(m.AddDate(0, 1, 0)) + ")"
		dates[i] = "toDate('" + day(m) + "')"
	}
	return "(" + strings.Join(ranges, " OR ") + ") AND toStartOfMonth(placed_at, 'Europe/London') IN (" + strings.Join(dates, ", ") + ")"
}

func utcLiteral(t time.Time) string {
	return "toDateTime('" + t.UTC().Format(time.DateTime) + "', 'UTC')"
}

// dayRange is an inclusive range of calendar days (civil dates at UTC
// midnight).
type dayRange struct{ from, to time.Time }

// condition selects the lines whose Europe/London day of placed_at is in r:
// the exact test on toDate, and bounds on placed_at (from an hour before
// the UTC start of r.from) for partition pruning.
func (r dayRange) condition() string {
	return "(toDate(placed_at, 'Europe/London') >= toDate('" + day(r.from) + "') AND toDate(placed_at, 'Europe/London') <= toDate('" +
		day(r.to) + "') AND placed_at >= " + utcLiteral(r.from.Add(-time.Hour)) + " AND placed_at < " + utcLiteral(r.to.AddDate(0, 0, 1)) + ")"
}

// civil returns the calendar day of t (its own location) as UTC midnight.
func civil(t time.Time) time.Time {
	return time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, time.UTC)
}

// topProductsPlan splits a filter's days into whole months, read from the
// rollup (months from first to last, each end open when zero; none when
// rollup is false), and the days outside them, read from the lines (at most
// two ranges, each bounded: an open end of the filter is always covered by
// whole months).
type topProductsPlan struct {
	rollup      bool
	first, last month // zero: open
	lines       []dayRange
}

func planTopProducts(f Filter) topProductsPlan {
	var p topProductsPlan
	var from, to time.Time
	if !f.From.IsZero() {
		from = civil(f.From)
		p.first = time.Date(from.Year(), from.Month(), 1, 0, 0, 0, 0, time.UTC)
		if from.Day() != 1 {
			p.first = p.first.AddDate(0, 1, 0)
		}
	}
	if !f.To.IsZero() {
		to = civil(f.To)
		p.last = time.Date(to.Year(), to.Month(), 1, 0, 0, 0, 0, time.UTC)
		if to.AddDate(0, 0, 1).Day() != 1 { // not the month's last day
			p.last = p.last.AddDate(0, -1, 0)
		}
	}
	p.rollup = p.first.IsZero() || p.last.IsZero() || !p.last.Before(p.first)
	if !p.rollup {
		p.lines = []dayRange{{from, to}}
		return p
	}
	if !from.IsZero() && from.Day() != 1 {
		p.lines = append(p.lines, dayRange{from, p.first.AddDate(0, 0, -1)})
	}
	if !to.IsZero() && to.AddDate(0, 0, 1).Day() != 1 {
		p.lines = append(p.lines, dayRange{p.last.AddDate(0, 1, 0), to})
	}
	return p
}

// rollupCondition selects the plan's whole months of the rollup ("" for
// every month).
func (p topProductsPlan) rollupCondition() string {
	var conds []string
	if !p.first.IsZero() {
		conds = append(conds, "placed_month >= toDate('"+day(p.first)+"')")
	}
	if !p.last.IsZero() {
		conds = append(conds, "placed_month <= toDate('"+day(p.last)+"')")
	}
	return strings.Join(conds, " AND ")
}
