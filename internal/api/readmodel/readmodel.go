package readmodel

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
	_ "time/tzdata" // Europe/London even without system zoneinfo

	"github.com/orderstream/orderstream/internal/api"
	"github.com/orderstream/orderstream/projections/analytics"
	"github.com/orderstream/orderstream/projections/search"
	"github.com/orderstream/orderstream/schemas"
)

var (
	_ api.Analytics = Analytics{}
	_ api.Search    = Search{}
	_ api.Pinger    = Analytics{}
	_ api.Pinger    = Search{}
)

// Analytics serves the API's analytics from the analytics read model's
// Queries (Q, required): the very queries `orderstream analytics` runs. It converts types
// and does no arithmetic.
type Analytics struct {
	Q *analytics.Queries
	// DB is the connection Q runs on; Ping (the API's /readyz) pings it.
	// Required.
	DB api.Pinger
}

// Ping implements api.Pinger: one SELECT 1 on DB.
func (a Analytics) Ping(ctx context.Context) error {
	if a.DB == nil {
		return errors.New("ping analytics read model: no connection configured (readmodel.Analytics.DB)")
	}
	if err := a.DB.Ping(ctx); err != nil {
		return fmt.Errorf("ping analytics read model: %w", err)
	}
	return nil
}

// filter converts f, first checking that its country (when given) is one of
// the read model's; an unknown one wraps api.ErrUnknownCountry.
func (a Analytics) filter(ctx context.Context, f api.Filter) (analytics.Filter, error) {
	af := analytics.Filter{From: f.From, To: f.To, Country: f.Country, Channel: f.Channel}
	if f.Country == "" {
		return af, nil
	}
	ok, err := a.Q.HasCountry(ctx, f.Country)
	if err != nil {
		return af, err
	}
	if !ok {
		return af, fmt.Errorf("country %q: %w", f.Country, api.ErrUnknownCountry)
	}
	return af, nil
}

func apiMetrics(t analytics.Totals) api.Metrics {
	return api.Metrics{
		NetRevenue:        api.NewAmount(t.NetRevenue),
		GrossSales:        api.NewAmount(t.GrossSales),
		Returns:           api.NewAmount(t.Returns),
		Adjustments:       api.NewAmount(t.Adjustments),
		Orders:            t.Orders,
		CreditNotes:       t.CreditNotes,
		AverageOrderValue: api.NewAmount(t.AverageOrderValue),
		Customers:         t.Customers,
	}
}

// Summary implements api.Analytics.
func (a Analytics) Summary(ctx context.Context, f api.Filter) (api.Summary, error) {
	af, err := a.filter(ctx, f)
	if err != nil {
		return api.Summary{}, err
	}
	t, err := a.Q.Summary(ctx, af)
	if err != nil {
		return api.Summary{}, err
	}
	return api.Summary{Metrics: apiMetrics(t)}, nil
}

// Breakdown implements api.Analytics.
func (a Analytics) Breakdown(ctx context.Context, f api.Filter, dim api.Dimension) ([]api.Bucket, error) {
	af, err := a.filter(ctx, f)
	if err != nil {
		return nil, err
	}
	groups, err := a.Q.Breakdown(ctx, af, analytics.Dimension(dim))
	if err != nil {
		return nil, err
	}
	out := make([]api.Bucket, len(groups))
	for i, gr := range groups {
		out[i] = api.Bucket{Key: gr.Key, Metrics: apiMetrics(gr.Totals)}
	}
	return out, nil
}

// TopProducts implements api.Analytics.
func (a Analytics) TopProducts(ctx context.Context, f api.Filter, order api.ProductOrder, limit int) ([]api.Product, error) {
	af, err := a.filter(ctx, f)
	if err != nil {
		return nil, err
	}
	ps, err := a.Q.TopProducts(ctx, af, analytics.Rank(order), limit)
	if err != nil {
		return nil, err
	}
	out := make([]api.Product, len(ps))
	for i, p := range ps {
		out[i] = api.Product{StockCode: p.StockCode, Description: p.Description, NetRevenue: api.NewAmount(p.NetRevenue), Quantity: p.Quantity}
	}
	return out, nil
}

// ReturnRate implements api.Analytics: the return rates of Summary.
func (a Analytics) ReturnRate(ctx context.Context, f api.Filter) (api.ReturnRate, error) {
	af, err := a.filter(ctx, f)
	if err != nil {
		return api.ReturnRate{}, err
	}
	t, err := a.Q.Summary(ctx, af)
	if err != nil {
		return api.ReturnRate{}, err
	}
	return api.ReturnRate{
		RateCount: api.NewAmount(t.ReturnRateCount), RateValue: api.NewAmount(t.ReturnRateValue),
		CreditNotes: t.CreditNotes, Orders: t.Orders, Returns: api.NewAmount(t.Returns), GrossSales: api.NewAmount(t.GrossSales),
	}, nil
}

// Search serves the API's order search from the search read model's
// Query (Q, required): the very queries `orderstream search` runs.
type Search struct{ Q *search.Query }

// Ping implements api.Pinger: the engine answers and a generation serves.
func (s Search) Ping(ctx context.Context) error { return s.Q.Ping(ctx) }

// london is the business time zone: API dates are its calendar days.
var london = mustLondon()

func mustLondon() *time.Location {
	loc, err := time.LoadLocation("Europe/London")
	if err != nil {
		panic("Europe/London: " + err.Error()) // impossible: time/tzdata is linked in
	}
	return loc
}

// placedBounds turns inclusive Europe/London calendar days into the
// half-open UTC instants search.Request takes: [from 00:00, to+1 00:00).
func placedBounds(from, to time.Time) (time.Time, time.Time) {
	var f, t time.Time
	if !from.IsZero() {
		f = time.Date(from.Year(), from.Month(), from.Day(), 0, 0, 0, 0, london).UTC()
	}
	if !to.IsZero() {
		t = time.Date(to.Year(), to.Month(), to.Day()+1, 0, 0, 0, 0, london).UTC()
	}
	return f, t
}

// Search implements api.Search; From/To become Europe/London day bounds.
func (s Search) Search(ctx context.Context, req api.SearchRequest) (api.SearchResult, error) {
	from, to := placedBounds(req.From, req.To)
	res, err := s.Q.Search(ctx, search.Request{
		Text: req.Text, Product: req.Product, Country: req.Country, Channel: req.Channel, Customer: req.Customer,
		Kind: req.Kind, Status: req.Status, From: from, To: to,
		Sort: search.Sort(req.Sort), After: req.After, Size: req.Size,
	})
	if errors.Is(err, search.ErrInvalidRequest) {
		return api.SearchResult{}, apiInvalid(err)
	}
	if err != nil {
		return api.SearchResult{}, err
	}
	out := api.SearchResult{Total: res.Total, Next: res.Next, Hits: make([]api.OrderSummary, len(res.Hits)),
		Facets: map[string][]api.FacetValue{
			"country": facet(res.Facets.Country), "channel": facet(res.Facets.Channel), "kind": facet(res.Facets.Kind), "status": facet(res.Facets.Status),
		}}
	for i, o := range res.Hits {
		out.Hits[i] = orderSummary(o)
	}
	return out, nil
}

// apiInvalid turns a search.ErrInvalidRequest error into the API's: each
// *search.RequestError becomes an *api.ParamError naming its parameter
// (size, sort, kind, status, to, after, country: as the API spells them).
func apiInvalid(err error) error {
	var errs []error
	var walk func(error)
	walk = func(err error) {
		var re *search.RequestError
		if j, ok := err.(interface{ Unwrap() []error }); ok {
			for _, e := range j.Unwrap() {
				walk(e)
			}
		} else if errors.As(err, &re) {
			errs = append(errs, &api.ParamError{Name: re.Field, Reason: re.Reason})
		} else {
			errs = append(errs, fmt.Errorf("%w: %s", api.ErrInvalidRequest, strings.TrimPrefix(err.Error(), search.ErrInvalidRequest.Error()+": ")))
		}
	}
	walk(err)
	return errors.Join(errs...)
}

func facet(bs []search.Bucket) []api.FacetValue {
	out := make([]api.FacetValue, len(bs))
	for i, b := range bs {
		out[i] = api.FacetValue{Value: b.Key, Count: b.Count}
	}
	return out
}

func orderSummary(o search.Order) api.OrderSummary {
	return api.OrderSummary{
		ID: o.OrderID, OrderNumber: o.OrderNumber, Kind: string(o.Kind), Status: string(o.Status),
		CustomerID: o.CustomerID, Country: o.Country, Channel: string(o.Channel), PlacedAt: o.PlacedAt, Total: api.NewAmount(o.Total),
		LineCount: o.LineCount, MatchedLines: o.MatchedLines,
	}
}

// Get implements api.Search; line amounts are schemas.Line.Amount.
func (s Search) Get(ctx context.Context, id string) (api.Order, error) {
	o, err := s.Q.Get(ctx, id)
	if errors.Is(err, search.ErrNotFound) {
		return api.Order{}, fmt.Errorf("%w: %v", api.ErrNotFound, err)
	}
	if err != nil {
		return api.Order{}, err
	}
	out := api.Order{OrderSummary: orderSummary(o), Paid: api.NewAmount(o.Paid), Refunded: api.NewAmount(o.Refunded),
		UpdatedAt: o.UpdatedAt, Version: o.Version, Lines: make([]api.OrderLine, len(o.Lines))}
	for i, l := range o.Lines {
		amount := schemas.Line{Quantity: l.Quantity, UnitPrice: schemas.NewMoney(l.UnitPrice, o.Currency)}.Amount().Amount
		out.Lines[i] = api.OrderLine{LineNo: l.LineNo, StockCode: l.StockCode, Description: l.Description,
			Quantity: l.Quantity, UnitPrice: api.NewAmount(l.UnitPrice), Amount: api.NewAmount(amount)}
	}
	return out, nil
}

var (
	_ api.OrderVersions = Analytics{}
	_ api.OrderVersions = Search{}
)

// OrderVersion implements api.OrderVersions: the highest version of order
// id in the serving generation's order_status table (0 when none).
func (a Analytics) OrderVersion(ctx context.Context, id string) (int64, error) {
	v, err := a.Q.OrderVersion(ctx, id)
	return int64(v), err
}

// OrderVersion implements api.OrderVersions: the version of the order's
// document in the serving generation by a real-time get of its id (0 when
// there is none yet). For min_version on /api/v1/orders/{number} the API
// first looks the number up (Get) and then asks by the order's id.
func (s Search) OrderVersion(ctx context.Context, id string) (int64, error) {
	return s.Q.OrderVersion(ctx, id)
}

// SearchedVersion implements api.SearchedVersions: the version searches
// find (after the engine's refresh), 0 when they do not find the order.
func (s Search) SearchedVersion(ctx context.Context, id string) (int64, error) {
	return s.Q.SearchedVersion(ctx, id)
}
