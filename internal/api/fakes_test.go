package api

import (
	"context"
	"strings"
	"sync"
	"time"

	"github.com/shopspring/decimal"
)

// fakeAnalytics is an Analytics whose methods are fields; a nil field
// answers fixed figures.
type fakeAnalytics struct {
	SummaryFn     func(context.Context, Filter) (Summary, error)
	BreakdownFn   func(context.Context, Filter, Dimension) ([]Bucket, error)
	TopProductsFn func(context.Context, Filter, ProductOrder, int) ([]Product, error)
	ReturnRateFn  func(context.Context, Filter) (ReturnRate, error)
}

func dec(s string) Amount { return NewAmount(decimal.RequireFromString(s)) }

func (f *fakeAnalytics) Summary(ctx context.Context, fl Filter) (Summary, error) {
	if f.SummaryFn != nil {
		return f.SummaryFn(ctx, fl)
	}
	return Summary{Metrics{NetRevenue: dec("9747747.934"), GrossSales: dec("10644560.420"), Returns: dec("-896812.486"),
		Orders: 22061, AverageOrderValue: dec("482.505"), Customers: 4372}}, nil
}

func (f *fakeAnalytics) Breakdown(ctx context.Context, fl Filter, d Dimension) ([]Bucket, error) {
	if f.BreakdownFn != nil {
		return f.BreakdownFn(ctx, fl, d)
	}
	return []Bucket{{Key: "2011-01", Metrics: Metrics{NetRevenue: dec("560000.26"), Orders: 1000}}}, nil
}

func (f *fakeAnalytics) TopProducts(ctx context.Context, fl Filter, o ProductOrder, n int) ([]Product, error) {
	if f.TopProductsFn != nil {
		return f.TopProductsFn(ctx, fl, o, n)
	}
	return []Product{{StockCode: "85123A", Description: "WHITE HANGING HEART T-LIGHT HOLDER", NetRevenue: dec("97894.5"), Quantity: 35025}}, nil
}

func (f *fakeAnalytics) ReturnRate(ctx context.Context, fl Filter) (ReturnRate, error) {
	if f.ReturnRateFn != nil {
		return f.ReturnRateFn(ctx, fl)
	}
	return ReturnRate{RateCount: dec("0.173882"), RateValue: dec("0.084251"), CreditNotes: 3836, Orders: 22061, Returns: dec("-896812.486"), GrossSales: dec("10644560.420")}, nil
}

// fakeSearch is a Search whose methods are fields.
type fakeSearch struct {
	SearchFn func(context.Context, SearchRequest) (SearchResult, error)
	GetFn    func(context.Context, string) (Order, error)
}

func (f *fakeSearch) Search(ctx context.Context, r SearchRequest) (SearchResult, error) {
	if f.SearchFn != nil {
		return f.SearchFn(ctx, r)
	}
	return SearchResult{Total: 1, Hits: []OrderSummary{{ID: "o-1", OrderNumber: "536365", Kind: "sale", Status: "paid",
		Country: "United Kingdom", PlacedAt: time.Date(2010, 12, 1, 8, 26, 0, 0, time.UTC), Total: dec("139.12"), LineCount: 7}},
		Facets: map[string][]FacetValue{"country": {{Value: "United Kingdom", Count: 1}}}}, nil
}

func (f *fakeSearch) Get(ctx context.Context, id string) (Order, error) {
	if f.GetFn != nil {
		return f.GetFn(ctx, id)
	}
	return Order{OrderSummary: OrderSummary{ID: id, OrderNumber: "536365"}, Lines: []OrderLine{{LineNo: 1, StockCode: "85123A",
		Quantity: 6, UnitPrice: dec("2.55"), Amount: dec("15.30")}}}, nil
}

// syncWriter collects log output written by concurrent goroutines.
type syncWriter struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncWriter) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }
