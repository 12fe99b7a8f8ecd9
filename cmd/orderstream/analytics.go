package main

import (
	"bufio"
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/orderstream/orderstream/projections/analytics"
	"github.com/orderstream/orderstream/schemas"
	"github.com/spf13/cobra"
)

const metricDefinitions = `Metrics (money in GBP, exact):
  net revenue     Σ quantity × unit price over every line of every document
                  (sales, credit notes and adjustments)
  gross sales     Σ over the lines of sale documents
  returns         Σ over the lines of credit notes; NEGATIVE
  adjustments     Σ over bad-debt adjustment documents
                  (net revenue = gross sales + returns + adjustments)
  orders          number of sale documents
  credit notes    number of credit-note documents
  aov             average order value = gross sales / orders, half-even to 3 decimals;
                  0 in a range without orders
  customers       distinct non-empty customer ids over documents of every kind
  return rate     count: credit notes / orders; value: −returns / gross sales;
                  fractions, half-even to 6 decimals; 0 when the divisor is 0
  top products    per stock code: net revenue, net quantity and documents
                  (sales, credit notes, adjustments) with this product;
                  description of the product's latest line in the range

Days and months are Europe/London calendar days of each document's placed
time. --from and --to are calendar days, both inclusive; either may be left
out. Every figure counts each line once, however often its event was
delivered.`

type analyticsFlags struct {
	from, to, country, channel string
	format                     outputFormat
	by                         string
	limit                      int
}

func newAnalyticsCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "analytics QUERY",
		Short: "Query the ClickHouse analytics read model and migrate its schema (generations: orderstream generations)",
		Long: "Dashboard queries over the analytics read model (ClickHouse, --clickhouse-addr,\n" +
			"--clickhouse-database), which `orderstream consume analytics` keeps up to date.\n\n" + metricDefinitions,
		Example: `  orderstream analytics summary
  orderstream analytics revenue --by month --from 2011-01-01 --to 2011-12-31
  orderstream analytics top-products --by quantity --limit 20 --country France --format csv`,
	}
	type metricCmd struct {
		use, short string
		defaultBy  string
		columns    []string
	}
	metrics := []metricCmd{
		{"summary", "Every metric over the range (optionally --by day|month|country|channel)", "", nil},
		{"revenue", "Net revenue, gross sales, returns and adjustments", "", []string{"net_revenue", "gross_sales", "returns", "adjustments"}},
		{"orders", "Number of sale documents and of credit notes", "", []string{"orders", "credit_notes"}},
		{"aov", "Average order value = gross sales / orders", "", []string{"gross_sales", "orders", "average_order_value"}},
		{"customers", "Distinct customers (non-empty customer id)", "", []string{"customers"}},
		{"return-rate", "Return rate by count and by value", "", []string{"orders", "credit_notes", "return_rate_count", "gross_sales", "returns", "return_rate_value"}},
	}
	for _, m := range metrics {
		var fl analyticsFlags
		c := &cobra.Command{
			Use:   m.use,
			Short: m.short,
			Long:  m.short + ".\n\n" + metricDefinitions,
			Args:  cobra.NoArgs,
			RunE: func(cmd *cobra.Command, _ []string) error {
				return runMetric(cmd.Context(), g, cmd.OutOrStdout(), m.use, fl, m.columns)
			},
		}
		addFilterFlags(c, &fl)
		c.Flags().StringVar(&fl.by, "by", m.defaultBy, "group by day, month, country or channel (default: totals over the range)")
		cmd.AddCommand(c)
	}
	var top analyticsFlags
	topCmd := &cobra.Command{
		Use:   "top-products",
		Short: "Top N products by net revenue or net quantity",
		Long:  "Top N products by net revenue or net quantity (descending; ties by stock code).\n\n" + metricDefinitions,
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runTopProducts(cmd.Context(), g, cmd.OutOrStdout(), top)
		},
	}
	addFilterFlags(topCmd, &top)
	topCmd.Flags().StringVar(&top.by, "by", "revenue", "rank by revenue or quantity")
	topCmd.Flags().IntVar(&top.limit, "limit", 10, "number of products, 1..10000")
	cmd.AddCommand(topCmd, newAnalyticsMigrateCmd(g), newGenerationsCmd(g))
	return cmd
}

func addFilterFlags(c *cobra.Command, fl *analyticsFlags) {
	f := c.Flags()
	f.StringVar(&fl.from, "from", "", "first calendar day (Europe/London), YYYY-MM-DD, inclusive (default: open)")
	f.StringVar(&fl.to, "to", "", "last calendar day (Europe/London), YYYY-MM-DD, inclusive (default: open)")
	f.StringVar(&fl.country, "country", "", "only documents of this country, exactly as in the data (e.g. \"United Kingdom\", EIRE)")
	f.StringVar(&fl.channel, "channel", "", "only documents of this sales channel: "+strings.Join(schemas.ChannelFilters, ", ")+" (unknown: the order does not say, as every order of the Online Retail file)")
	addFormatFlag(c, &fl.format, formatCSV)
}

func (fl analyticsFlags) filter() (analytics.Filter, error) {
	var f analytics.Filter
	var err error
	if fl.from != "" {
		if f.From, err = time.Parse(time.DateOnly, fl.from); err != nil {
			return f, usagef("--from %q: want a date YYYY-MM-DD", fl.from)
		}
	}
	if fl.to != "" {
		if f.To, err = time.Parse(time.DateOnly, fl.to); err != nil {
			return f, usagef("--to %q: want a date YYYY-MM-DD", fl.to)
		}
	}
	if err := f.Validate(); err != nil {
		return f, usagef("--from/--to: %v", err)
	}
	f.Country = fl.country
	if fl.channel != "" {
		if _, err := schemas.ParseChannelFilter(fl.channel); err != nil {
			return f, usagef("--channel: %v", err)
		}
		f.Channel = fl.channel
	}
	return f, nil
}

// analyticsQueries opens the read model for queries; close the returned closer.
func analyticsQueries(g *globals) (*analytics.Queries, *analytics.Store, driver.Conn, error) {
	cfg, err := g.analyticsConfig()
	if err != nil {
		return nil, nil, nil, err
	}
	conn, err := analytics.Open(cfg)
	if err != nil {
		return nil, nil, nil, err
	}
	st, err := analytics.NewStore(conn, cfg.Database, analytics.WithStoreLogger(g.log), analytics.WithCluster(cfg.Cluster))
	if err != nil {
		_ = conn.Close()
		return nil, nil, nil, err
	}
	return analytics.New(conn, cfg.Database), st, conn, nil
}

// checkCountry rejects (exit 2) a --country that no line of the read model
// has, so that a misspelling does not pass for a country without sales.
func checkCountry(ctx context.Context, g *globals, subcommand string, q *analytics.Queries, country string) error {
	if country == "" {
		return nil
	}
	ok, err := q.HasCountry(ctx, country)
	if err != nil {
		return clickHouseError(g, subcommand, err)
	}
	if !ok {
		return usagef("--country %q: no such country in the read model (countries are as in the data, case-sensitive, e.g. \"France\", \"EIRE\", \"United Kingdom\")", country)
	}
	return nil
}

var allTotalsColumns = []string{"net_revenue", "gross_sales", "returns", "adjustments", "orders", "credit_notes",
	"customers", "lines", "average_order_value", "return_rate_count", "return_rate_value"}

func totalsValue(t analytics.Totals, col string) string {
	switch col {
	case "net_revenue":
		return t.NetRevenue.StringFixed(3)
	case "gross_sales":
		return t.GrossSales.StringFixed(3)
	case "returns":
		return t.Returns.StringFixed(3)
	case "adjustments":
		return t.Adjustments.StringFixed(3)
	case "orders":
		return strconv.FormatInt(t.Orders, 10)
	case "credit_notes":
		return strconv.FormatInt(t.CreditNotes, 10)
	case "customers":
		return strconv.FormatInt(t.Customers, 10)
	case "lines":
		return strconv.FormatInt(t.Lines, 10)
	case "average_order_value":
		return t.AverageOrderValue.StringFixed(3)
	case "return_rate_count":
		return t.ReturnRateCount.StringFixed(6)
	case "return_rate_value":
		return t.ReturnRateValue.StringFixed(6)
	}
	return ""
}

// countColumns are integers; JSON prints them as numbers, every other
// metric as an exact decimal string with the fixed scale of totalsValue.
var countColumns = map[string]bool{"orders": true, "credit_notes": true, "customers": true, "lines": true}

// jsonField is one member of a jsonObject.
type jsonField struct {
	name  string
	value any
}

// jsonObject is a JSON object whose members keep their order (the order of
// the table and CSV columns).
type jsonObject []jsonField

// MarshalJSON implements json.Marshaler.
func (o jsonObject) MarshalJSON() ([]byte, error) {
	buf := []byte{'{'}
	for i, f := range o {
		if i > 0 {
			buf = append(buf, ',')
		}
		k, err := json.Marshal(f.name)
		if err != nil {
			return nil, err
		}
		v, err := json.Marshal(f.value)
		if err != nil {
			return nil, err
		}
		buf = append(append(append(buf, k...), ':'), v...)
	}
	return append(buf, '}'), nil
}

// totalsObject is the JSON of t's columns (after "key" when key is not
// nil): counts as numbers, money (3 decimals) and rates (6) as strings.
func totalsObject(key *string, t analytics.Totals, columns []string) jsonObject {
	var o jsonObject
	if key != nil {
		o = append(o, jsonField{"key", *key})
	}
	for _, c := range columns {
		v := totalsValue(t, c)
		if countColumns[c] {
			o = append(o, jsonField{c, json.Number(v)})
		} else {
			o = append(o, jsonField{c, v})
		}
	}
	return o
}

// money columns get the currency in table output.
var moneyColumns = map[string]bool{"net_revenue": true, "gross_sales": true, "returns": true, "adjustments": true, "average_order_value": true}

// clickHouseError names the subcommand and the ClickHouse server in a
// query's error: "analytics aov: ClickHouse at 127.0.0.1:59000: ...".
func clickHouseError(g *globals, subcommand string, err error) error {
	return fmt.Errorf("analytics %s: ClickHouse at %s: %w", subcommand, g.conn.ClickHouse.Addr, err)
}

func runMetric(ctx context.Context, g *globals, w io.Writer, name string, fl analyticsFlags, columns []string) error {
	f, err := fl.filter()
	if err != nil {
		return err
	}
	var by analytics.Dimension
	switch fl.by {
	case "":
	case "day", "month", "country", "channel":
		by = analytics.Dimension(fl.by)
	default:
		return usagef("--by %q: want day, month, country or channel", fl.by)
	}
	q, _, closer, err := analyticsQueries(g)
	if err != nil {
		return clickHouseError(g, name, err)
	}
	defer closer.Close()
	if err := checkCountry(ctx, g, name, q, f.Country); err != nil {
		return err
	}
	if by == "" {
		t, err := q.Summary(ctx, f)
		if err != nil {
			return clickHouseError(g, name, err)
		}
		if columns == nil {
			columns = allTotalsColumns
		}
		if fl.format == formatTable { // one metric per line, with units
			rows := make([][]string, len(columns))
			for i, c := range columns {
				v := totalsValue(t, c)
				if moneyColumns[c] {
					v += " GBP"
				}
				rows[i] = []string{strings.ReplaceAll(c, "_", " "), v}
			}
			return writeTable(w, []string{"metric", "value"}, rows, map[int]bool{1: true})
		}
		if fl.format == formatJSON {
			return writeJSON(w, totalsObject(nil, t, columns))
		}
		row := make([]string, len(columns))
		for i, c := range columns {
			row[i] = totalsValue(t, c)
		}
		return writeCSV(w, columns, [][]string{row})
	}
	groups, err := q.Breakdown(ctx, f, by)
	if err != nil {
		return clickHouseError(g, name, err)
	}
	if columns == nil {
		columns = allTotalsColumns
	}
	if fl.format == formatJSON {
		objs := make([]jsonObject, len(groups))
		for i, gr := range groups {
			key := gr.Key
			objs[i] = totalsObject(&key, gr.Totals, columns)
		}
		return writeJSON(w, objs)
	}
	header := append([]string{string(by)}, columns...)
	rows := make([][]string, len(groups))
	for i, gr := range groups {
		row := []string{gr.Key}
		for _, c := range columns {
			row = append(row, totalsValue(gr.Totals, c))
		}
		rows[i] = row
	}
	if fl.format == formatCSV {
		return writeCSV(w, header, rows)
	}
	right := map[int]bool{}
	for i := 1; i < len(header); i++ {
		right[i] = true
	}
	return writeTable(w, header, rows, right)
}

func runTopProducts(ctx context.Context, g *globals, w io.Writer, fl analyticsFlags) error {
	f, err := fl.filter()
	if err != nil {
		return err
	}
	var by analytics.Rank
	switch fl.by {
	case "revenue", "quantity":
		by = analytics.Rank(fl.by)
	default:
		return usagef("--by %q: want revenue or quantity", fl.by)
	}
	if fl.limit < 1 || fl.limit > 10000 {
		return usagef("--limit %d: want 1..10000", fl.limit)
	}
	q, _, closer, err := analyticsQueries(g)
	if err != nil {
		return clickHouseError(g, "top-products", err)
	}
	defer closer.Close()
	if err := checkCountry(ctx, g, "top-products", q, f.Country); err != nil {
		return err
	}
	ps, err := q.TopProducts(ctx, f, by, fl.limit)
	if err != nil {
		return clickHouseError(g, "top-products", err)
	}
	if fl.format == formatJSON {
		objs := make([]jsonObject, len(ps))
		for i, p := range ps {
			objs[i] = jsonObject{{"rank", i + 1}, {"stock_code", p.StockCode}, {"description", p.Description},
				{"net_revenue", p.NetRevenue.StringFixed(3)}, {"quantity", p.Quantity}, {"documents", p.Documents}}
		}
		return writeJSON(w, objs)
	}
	header := []string{"rank", "stock_code", "description", "net_revenue", "quantity", "documents"}
	rows := make([][]string, len(ps))
	for i, p := range ps {
		rows[i] = []string{strconv.Itoa(i + 1), p.StockCode, p.Description, p.NetRevenue.StringFixed(3),
			strconv.FormatInt(p.Quantity, 10), strconv.FormatInt(p.Documents, 10)}
	}
	if fl.format == formatCSV {
		return writeCSV(w, header, rows)
	}
	return writeTable(w, header, rows, map[int]bool{0: true, 3: true, 4: true, 5: true})
}

func newAnalyticsMigrateCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "migrate",
		Short: "Create or upgrade the read model's schema (idempotent; creates generation 1 on first run)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			_, st, closer, err := analyticsQueries(g)
			if err != nil {
				return err
			}
			defer closer.Close()
			if err := st.Migrate(cmd.Context()); err != nil {
				return err
			}
			n, err := st.Serving(cmd.Context())
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "analytics schema of %s up to date; generation %d serving\n", st.Database(), n)
			return nil
		},
	}
}

// newGenerationsCmd is `analytics generations`, the earlier tree of the
// analytics read model's generations: hidden, deprecated aliases of the
// verbs of `orderstream generations`.
func newGenerationsCmd(g *globals) *cobra.Command {
	cmd := legacyGenerationCmd(g, analytics.Projection, nil, "list", "generations")
	for _, verb := range []struct{ verb, use string }{
		{"create", "create [N]"}, {"cutover", "cutover N"}, {"rollback", "rollback"}, {"drop", "drop N"},
	} {
		cmd.AddCommand(legacyGenerationCmd(g, analytics.Projection, nil, verb.verb, verb.use))
	}
	return cmd
}

// writeTable prints an aligned table; columns in right are right-aligned.
func writeTable(w io.Writer, header []string, rows [][]string, right map[int]bool) error {
	widths := make([]int, len(header))
	for i, h := range header {
		widths[i] = len(h)
	}
	for _, r := range rows {
		for i, c := range r {
			widths[i] = max(widths[i], len([]rune(c)))
		}
	}
	tw := bufio.NewWriter(w)
	line := func(cells []string) {
		for i, c := range cells {
			pad := strings.Repeat(" ", widths[i]-len([]rune(c)))
			if i > 0 {
				fmt.Fprint(tw, "  ")
			}
			if right[i] {
				fmt.Fprint(tw, pad+c)
			} else if i == len(cells)-1 {
				fmt.Fprint(tw, c)
			} else {
				fmt.Fprint(tw, c+pad)
			}
		}
		fmt.Fprintln(tw)
	}
	line(header)
	for _, r := range rows {
		line(r)
	}
	return tw.Flush()
}

func writeCSV(w io.Writer, header []string, rows [][]string) error {
	cw := csv.NewWriter(w)
	if err := cw.Write(header); err != nil {
		return err
	}
	if err := cw.WriteAll(rows); err != nil {
		return err
	}
	return cw.Error()
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
