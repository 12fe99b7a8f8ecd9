package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/orderstream/orderstream/projections"
	"github.com/orderstream/orderstream/projections/search"
	"github.com/orderstream/orderstream/schemas"
	"github.com/spf13/cobra"
)

// searchTimeout bounds one CLI command's requests to the engine.
const searchTimeout = 60 * time.Second

func newSearchCmd(g *globals) *cobra.Command {
	var (
		prefix   string
		req      search.Request
		from, to string
		sortBy   string
		format   outputFormat
	)
	cmd := &cobra.Command{
		Use:   "search [TEXT...]",
		Short: "Search orders in the search read model (full text, filters, facets)",
		Long: `Searches the serving generation of the search read model. TEXT is matched
against the product descriptions of the order lines and the order number;
orders whose descriptions hold every word rank first. Filters combine with
AND. Dates are Europe/London calendar days, --to inclusive.

Prints a table (order number, placed time in Europe/London time, kind, status, country,
customer, total, lines matching TEXT or --product), the facets over every
matching order, and the cursor of the next page (pass it to --after).
--format json prints the orders with their lines, the facets and the
cursor; --format csv one row per order (placed_at in UTC, RFC 3339), without
facets or cursor.`,
		Example: `  orderstream search hanging heart
  orderstream search --product 85123A --country "United Kingdom" --sort total
  orderstream search --kind credit_note --from 2011-01-01 --to 2011-01-31 --format json`,
		RunE: func(cmd *cobra.Command, args []string) error {
			req.Text = strings.Join(args, " ")
			req.Sort = search.Sort(sortBy)
			var err error
			if req.From, err = londonDay("--from", from, 0); err != nil {
				return err
			}
			if req.To, err = londonDay("--to", to, 1); err != nil {
				return err
			}
			if err := checkSearchFlags(req, from, to); err != nil {
				return err
			}
			cfg, err := searchConfig(g, prefix)
			if err != nil {
				return err
			}
			q, err := search.NewQuery(cfg)
			if err != nil {
				return usagef("%v", err)
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), searchTimeout)
			defer cancel()
			res, err := q.Search(ctx, req)
			if errors.Is(err, search.ErrInvalidRequest) {
				return searchUsage(err)
			}
			if err != nil {
				return err
			}
			switch format {
			case formatJSON:
				return printSearchJSON(cmd.OutOrStdout(), res)
			case formatCSV:
				return printSearchCSV(cmd.OutOrStdout(), res)
			}
			return printSearchTable(cmd.OutOrStdout(), res)
		},
	}
	f := cmd.Flags()
	cmd.PersistentFlags().StringVar(&prefix, "index-prefix", search.DefaultPrefix, "name prefix of the read model's indexes (<prefix>_v<n>) and aliases (<prefix>, <prefix>_write)")
	f.StringVar(&req.Product, "product", "", "only orders with a line of this exact stock code, e.g. 85123A")
	f.StringVar(&req.Country, "country", "", "only orders of this country, as in the data (case-sensitive), e.g. \"United Kingdom\", \"France\", \"EIRE\"")
	f.StringVar(&req.Channel, "channel", "", "only orders of this sales channel: "+strings.Join(schemas.ChannelFilters, ", ")+" (unknown: the order does not say)")
	f.StringVar(&req.Customer, "customer", "", "only orders of this customer id")
	f.StringVar(&req.Kind, "kind", "", "only orders of this kind: sale, credit_note, adjustment")
	f.StringVar(&req.Status, "status", "", "only orders in this status: placed, paid, shipped, cancelled, refunded")
	f.StringVar(&from, "from", "", "first day placed, YYYY-MM-DD (Europe/London)")
	f.StringVar(&to, "to", "", "last day placed, YYYY-MM-DD (Europe/London), inclusive")
	f.StringVar(&sortBy, "sort", "", "relevance (best TEXT match first; needs TEXT), date (newest first) or total (largest first); default: relevance with TEXT, else date")
	f.StringVar(&req.After, "after", "", "cursor printed as 'next' by the previous page")
	f.IntVar(&req.Size, "limit", search.DefaultSize, fmt.Sprintf("orders per page, 1..%d", search.MaxSize))
	addFormatFlag(cmd, &format, formatCSV)
	cmd.AddCommand(newSearchAdminCmd(g, &prefix))
	return cmd
}

// checkSearchFlags refuses bad flag values before any request, in the
// flags' terms (from and to are the raw --from/--to values).
func checkSearchFlags(req search.Request, from, to string) error {
	switch req.Sort {
	case "", search.SortDate, search.SortTotal:
	case search.SortRelevance:
		if strings.TrimSpace(req.Text) == "" {
			return usagef("--sort relevance needs a TEXT to search for")
		}
	default:
		return usagef("--sort %q: want relevance, date or total", req.Sort)
	}
	if req.Size < 1 || req.Size > search.MaxSize {
		return usagef("--limit %d: want 1..%d", req.Size, search.MaxSize)
	}
	if req.Kind != "" && !schemas.Kind(req.Kind).Valid() {
		return usagef("--kind %q: want sale, credit_note or adjustment", req.Kind)
	}
	switch schemas.Status(req.Status) {
	case "", schemas.StatusPlaced, schemas.StatusPaid, schemas.StatusShipped, schemas.StatusCancelled, schemas.StatusRefunded:
	default:
		return usagef("--status %q: want placed, paid, shipped, cancelled or refunded", req.Status)
	}
	if req.Channel != "" {
		if _, err := schemas.ParseChannelFilter(req.Channel); err != nil {
			return usagef("--channel: %v", err)
		}
	}
	if from != "" && to != "" && !req.From.Before(req.To) {
		return usagef("--to %s is before --from %s", to, from)
	}
	return nil
}

// searchFlags maps a search.RequestError field to its flag.
var searchFlags = map[string]string{"size": "--limit", "after": "--after", "from": "--from", "to": "--to"}

// searchUsage turns a refused request into a usage error naming the flag.
func searchUsage(err error) error {
	var re *search.RequestError
	if !errors.As(err, &re) {
		return usagef("%v", err)
	}
	flag, ok := searchFlags[re.Field]
	if !ok {
		flag = "--" + re.Field
	}
	if re.Field == "after" {
		return usagef("--after: %s; pass the 'next' value printed by the previous page of the same search", re.Reason)
	}
	return usagef("%s: %s", flag, re.Reason)
}

// londonDay parses a YYYY-MM-DD flag as the start of that Europe/London day
// plus addDays days; "" is the zero time.
func londonDay(flag, v string, addDays int) (time.Time, error) {
	if v == "" {
		return time.Time{}, nil
	}
	loc, err := time.LoadLocation("Europe/London")
	if err != nil {
		return time.Time{}, fmt.Errorf("time zone Europe/London: %w", err)
	}
	d, err := time.ParseInLocation("2006-01-02", v, loc)
	if err != nil {
		return time.Time{}, usagef("%s %q: want a date YYYY-MM-DD", flag, v)
	}
	return d.AddDate(0, 0, addDays), nil
}

// printSearchTable prints res as a table, placed times in Europe/London
// time (the days of --from/--to), then the non-empty facets and the cursor.
func printSearchTable(w io.Writer, res search.Result) error {
	loc, err := time.LoadLocation("Europe/London")
	if err != nil {
		return fmt.Errorf("time zone Europe/London: %w", err)
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ORDER\tPLACED (London)\tKIND\tSTATUS\tCOUNTRY\tCUSTOMER\tTOTAL\tLINES\tMATCHING")
	for _, o := range res.Hits {
		cust := o.CustomerID
		if cust == "" {
			cust = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s %s\t%d\t%d\n", o.OrderNumber, o.PlacedAt.In(loc).Format("2006-01-02 15:04"),
			o.Kind, o.Status, o.Country, cust, o.Total.StringFixed(2), o.Currency, o.LineCount, o.MatchedLines)
	}
	tw.Flush()
	noun := "orders match"
	if res.Total == 1 {
		noun = "order matches"
	}
	fmt.Fprintf(w, "\n%d %s; showing %d\n", res.Total, noun, len(res.Hits))
	for _, f := range []struct {
		name string
		b    []search.Bucket
	}{{"kind", res.Facets.Kind}, {"status", res.Facets.Status}, {"country", res.Facets.Country}, {"channel", res.Facets.Channel}} {
		if len(f.b) == 0 {
			continue
		}
		parts := make([]string, len(f.b))
		for i, b := range f.b {
			parts[i] = fmt.Sprintf("%s %d", b.Key, b.Count)
		}
		fmt.Fprintf(w, "%-8s %s\n", f.name+":", strings.Join(parts, ", "))
	}
	if res.Next != "" {
		fmt.Fprintf(w, "next:    %s\n", res.Next)
	}
	return nil
}

// printSearchCSV prints one row per order of res: the table's columns,
// placed_at in UTC (RFC 3339), total with its currency in a column of its own.
func printSearchCSV(w io.Writer, res search.Result) error {
	header := []string{"order_number", "placed_at", "kind", "status", "country", "customer_id", "total", "currency", "line_count", "matched_lines"}
	rows := make([][]string, len(res.Hits))
	for i, o := range res.Hits {
		rows[i] = []string{o.OrderNumber, o.PlacedAt.UTC().Format(time.RFC3339), string(o.Kind), string(o.Status), o.Country,
			o.CustomerID, o.Total.StringFixed(2), o.Currency, strconv.Itoa(o.LineCount), strconv.Itoa(o.MatchedLines)}
	}
	return writeCSV(w, header, rows)
}

// searchHitJSON is an order in --format json output, with its matching line count.
type searchHitJSON struct {
	search.Order
	MatchedLines int `json:"matched_lines"`
}

func printSearchJSON(w io.Writer, res search.Result) error {
	hits := make([]searchHitJSON, len(res.Hits))
	for i, o := range res.Hits {
		hits[i] = searchHitJSON{Order: o, MatchedLines: o.MatchedLines}
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(struct {
		Total  int64           `json:"total"`
		Hits   []searchHitJSON `json:"hits"`
		Facets search.Facets   `json:"facets"`
		Next   string          `json:"next,omitempty"`
	}{res.Total, hits, res.Facets, res.Next})
}

// newSearchAdminCmd is `search admin`, the earlier tree of the search read
// model's generations: hidden, deprecated aliases of `orderstream
// generations` (setup: of the read model's Setup, which `generations create`
// and the daemon run).
func newSearchAdminCmd(g *globals, prefix *string) *cobra.Command {
	admin := &cobra.Command{
		Use:    "admin",
		Short:  "Deprecated: 'orderstream generations'",
		Hidden: true,
	}
	setup := &cobra.Command{
		Use: "setup", Short: "Deprecated: put the index template and create generation 1 if nothing serves yet", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			p, err := openProjection(g, "search", *prefix)
			if err != nil {
				return err
			}
			defer p.Close()
			ctx, cancel := context.WithTimeout(cmd.Context(), searchTimeout)
			defer cancel()
			if err := p.Setup(ctx); err != nil {
				return err
			}
			gens, err := p.Generations(ctx)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "serving generation %d\n", projections.Serving(gens))
			return nil
		},
	}
	admin.AddCommand(deprecatedAlias(setup, "generations create search (or the daemon, 'orderstream consume search', which sets the read model up)"))
	for _, verb := range []struct{ verb, use string }{
		{"list", "generations"}, {"create", "create-generation N"}, {"cutover", "cutover N"}, {"rollback", "rollback"}, {"drop", "drop-generation N"},
	} {
		admin.AddCommand(legacyGenerationCmd(g, "search", prefix, verb.verb, verb.use))
	}
	return admin
}
