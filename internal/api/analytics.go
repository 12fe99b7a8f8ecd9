package api

import (
	"context"
	"errors"
	"net/http"
	"sort"
	"time"

	"github.com/orderstream/orderstream/schemas"
	"github.com/shopspring/decimal"
)

// Analytics answers the dashboard's questions from the analytics read model.
// Implementations are the same queries `orderstream analytics` runs; the API
// adds no arithmetic of its own to any metric.
//
// Every method must honour ctx (the request's deadline) and be safe for
// concurrent use.
type Analytics interface {
	// Every method wraps ErrUnknownCountry when f.Country is not empty and
	// no order of the read model has that country.
	//
	// Summary returns the totals of f's range, country and channel.
	Summary(ctx context.Context, f Filter) (Summary, error)
	// Breakdown returns the metrics per bucket of dim: days, months or
	// channels in ascending order, countries in any order.
	Breakdown(ctx context.Context, f Filter, dim Dimension) ([]Bucket, error)
	// TopProducts returns at most limit products ranked by order.
	TopProducts(ctx context.Context, f Filter, order ProductOrder, limit int) ([]Product, error)
	// ReturnRate returns the return rate of f's range and country.
	ReturnRate(ctx context.Context, f Filter) (ReturnRate, error)
}

// ErrUnknownCountry is wrapped by an Analytics method when the filter's
// Country is not a country of the read model (a misspelling or the wrong
// case); the API answers 400 naming the country parameter.
var ErrUnknownCountry = errors.New("no such country in the read model (countries are as in the data, case-sensitive, e.g. \"France\", \"EIRE\", \"United Kingdom\")")

// analyticsError answers a failed analytics query: 400 for an unknown
// country, otherwise as backendError does.
func (s *Server) analyticsError(w http.ResponseWriter, r *http.Request, f Filter, err error) {
	if errors.Is(err, ErrUnknownCountry) {
		writeBadParams(w, r, []*paramError{badParam("country", "%q: %v", f.Country, ErrUnknownCountry)})
		return
	}
	s.backendError(w, r, "analytics", err)
}

// Filter selects the orders a query covers: placed on a Europe/London
// calendar day in [From, To] (both inclusive; a zero bound is open), when
// Country is not empty from that country (exact match, e.g. "EIRE"), and
// when Channel is not empty of that sales channel (web, phone, marketplace,
// store, or unknown for orders that do not say; schemas.ChannelFilters).
// From and To carry only a date (midnight UTC of that calendar day).
type Filter struct {
	From    time.Time
	To      time.Time
	Country string
	Channel string
}

// Dimension is how Breakdown groups: "day", "month", "country" or
// "channel".
type Dimension string

// Dimensions of Breakdown.
const (
	ByDay     Dimension = "day"
	ByMonth   Dimension = "month"
	ByCountry Dimension = "country"
	ByChannel Dimension = "channel"
)

// ProductOrder ranks products: "revenue" (net revenue, GBP) or "quantity"
// (net units).
type ProductOrder string

// Product rankings.
const (
	ByRevenue  ProductOrder = "revenue"
	ByQuantity ProductOrder = "quantity"
)

// Metrics are the dashboard's metrics over a set of orders. Definitions
// (owned by the analytics read model, see `orderstream analytics --help`):
// NetRevenue Σ quantity × unit price over every line of every document;
// GrossSales the same over sale documents; Returns over credit notes (≤ 0);
// Adjustments over bad-debt adjustments; Orders the number of sale
// documents; CreditNotes the number of credit notes; AverageOrderValue
// GrossSales / Orders; Customers distinct non-empty customer ids. Money in
// GBP.
type Metrics struct {
	NetRevenue        Amount `json:"net_revenue"`
	GrossSales        Amount `json:"gross_sales"`
	Returns           Amount `json:"returns"`
	Adjustments       Amount `json:"adjustments"`
	Orders            int64  `json:"orders"`
	CreditNotes       int64  `json:"credit_notes"`
	AverageOrderValue Amount `json:"average_order_value"`
	Customers         int64  `json:"customers"`
}

// Summary is the totals of a range.
type Summary struct {
	Metrics
}

// Bucket is the metrics of one day ("2011-03-01"), month ("2011-03"),
// country ("United Kingdom") or channel ("web"; "unknown" when not known).
type Bucket struct {
	Key string `json:"key"`
	Metrics
}

// Product is one product of a top-products ranking.
type Product struct {
	StockCode   string `json:"stock_code"`
	Description string `json:"description"`
	NetRevenue  Amount `json:"net_revenue"`
	Quantity    int64  `json:"quantity"`
}

// ReturnRate is returns against sales over a range, as the read model
// defines it (see `orderstream analytics return-rate --help`): RateCount =
// CreditNotes / Orders, RateValue = −Returns / GrossSales, both fractions as
// exact decimal strings.
type ReturnRate struct {
	RateCount   Amount `json:"return_rate_count"`
	RateValue   Amount `json:"return_rate_value"`
	CreditNotes int64  `json:"credit_notes"`
	Orders      int64  `json:"orders"`
	Returns     Amount `json:"returns"`
	GrossSales  Amount `json:"gross_sales"`
}

// rangeEcho is the filter as the response repeats it.
type rangeEcho struct {
	From     string `json:"from,omitempty"`
	To       string `json:"to,omitempty"`
	Country  string `json:"country,omitempty"`
	Channel  string `json:"channel,omitempty"`
	Currency string `json:"currency"`
	Timezone string `json:"timezone"`
}

func echo(f Filter) rangeEcho {
	e := rangeEcho{Country: f.Country, Channel: f.Channel, Currency: "GBP", Timezone: "Europe/London"}
	if !f.From.IsZero() {
		e.From = f.From.Format(dateLayout)
	}
	if !f.To.IsZero() {
		e.To = f.To.Format(dateLayout)
	}
	return e
}

// filter reads from, to, country and channel.
func (q *query) filter() Filter {
	from, to := q.dateRange()
	return Filter{From: from, To: to, Country: q.str("country"), Channel: q.oneOf("channel", "", schemas.ChannelFilters...)}
}

// Limits of the top-products and revenue-by-country endpoints.
const (
	defaultTopProducts = 10
	maxTopProducts     = 100
	maxTopCountries    = 100
)

func (s *Server) handleSummary(w http.ResponseWriter, r *http.Request) {
	q := newQuery(r.URL.Query())
	f := q.filter()
	if !q.ok() {
		writeBadParams(w, r, q.errs)
		return
	}
	sum, err := s.analytics.Summary(r.Context(), f)
	if err != nil {
		s.analyticsError(w, r, f, err)
		return
	}
	writeJSON(w, struct {
		rangeEcho
		Summary
	}{echo(f), sum})
}

// countryRest is what revenue by country folds into "rest" beyond the top
// N: the count of countries folded and the exact sums of the additive
// metrics (distinct customers and averages do not add up, so they are
// absent).
type countryRest struct {
	Countries   int    `json:"countries"`
	NetRevenue  Amount `json:"net_revenue"`
	GrossSales  Amount `json:"gross_sales"`
	Returns     Amount `json:"returns"`
	Adjustments Amount `json:"adjustments"`
	Orders      int64  `json:"orders"`
	CreditNotes int64  `json:"credit_notes"`
}

func (s *Server) handleRevenue(w http.ResponseWriter, r *http.Request) {
	q := newQuery(r.URL.Query())
	f := q.filter()
	by := Dimension(q.oneOf("by", string(ByMonth), string(ByDay), string(ByMonth), string(ByCountry), string(ByChannel)))
	top := q.intIn("top", 0, 0, maxTopCountries)
	if top > 0 && by != ByCountry {
		q.fail("top", "applies only to by=country")
	}
	if !q.ok() {
		writeBadParams(w, r, q.errs)
		return
	}
	rows, err := s.analytics.Breakdown(r.Context(), f, by)
	if err != nil {
		s.analyticsError(w, r, f, err)
		return
	}
	if rows == nil {
		rows = []Bucket{}
	}
	resp := struct {
		rangeEcho
		By   Dimension    `json:"by"`
		Rows []Bucket     `json:"rows"`
		Rest *countryRest `json:"rest,omitempty"`
	}{rangeEcho: echo(f), By: by, Rows: rows}
	if by == ByCountry {
		sort.SliceStable(rows, func(i, j int) bool {
			if c := rows[i].NetRevenue.Cmp(rows[j].NetRevenue.Decimal); c != 0 {
				return c > 0
			}
			return rows[i].Key < rows[j].Key
		})
		if top > 0 && len(rows) > top {
			rest := &countryRest{Countries: len(rows) - top}
			var net, gross, ret, adj decimal.Decimal
			for _, b := range rows[top:] {
				net = net.Add(b.NetRevenue.Decimal)
				gross = gross.Add(b.GrossSales.Decimal)
				ret = ret.Add(b.Returns.Decimal)
				adj = adj.Add(b.Adjustments.Decimal)
				rest.Orders += b.Orders
				rest.CreditNotes += b.CreditNotes
			}
			rest.NetRevenue, rest.GrossSales, rest.Returns, rest.Adjustments = NewAmount(net), NewAmount(gross), NewAmount(ret), NewAmount(adj)
			resp.Rows, resp.Rest = rows[:top], rest
		}
	}
	writeJSON(w, resp)
}

func (s *Server) handleTopProducts(w http.ResponseWriter, r *http.Request) {
	q := newQuery(r.URL.Query())
	f := q.filter()
	by := ProductOrder(q.oneOf("by", string(ByRevenue), string(ByRevenue), string(ByQuantity)))
	limit := q.intIn("limit", defaultTopProducts, 1, maxTopProducts)
	if !q.ok() {
		writeBadParams(w, r, q.errs)
		return
	}
	rows, err := s.analytics.TopProducts(r.Context(), f, by, limit)
	if err != nil {
		s.analyticsError(w, r, f, err)
		return
	}
	if rows == nil {
		rows = []Product{}
	}
	writeJSON(w, struct {
		rangeEcho
		By    ProductOrder `json:"by"`
		Limit int          `json:"limit"`
		Rows  []Product    `json:"rows"`
	}{echo(f), by, limit, rows})
}

func (s *Server) handleReturnRate(w http.ResponseWriter, r *http.Request) {
	q := newQuery(r.URL.Query())
	f := q.filter()
	if !q.ok() {
		writeBadParams(w, r, q.errs)
		return
	}
	rr, err := s.analytics.ReturnRate(r.Context(), f)
	if err != nil {
		s.analyticsError(w, r, f, err)
		return
	}
	writeJSON(w, struct {
		rangeEcho
		ReturnRate
	}{echo(f), rr})
}
