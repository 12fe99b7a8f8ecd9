package api

import (
	"context"
	"net/http"

	"github.com/orderstream/orderstream/internal/tracing"
	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
)

// traced gives every request a server span (otelhttp; W3C traceparent of
// the caller honoured) named by the route pattern ("GET /api/v1/orders/{id}"), bounded like the
// metrics' route label. The read-model queries are its children
// (tracedAnalytics, tracedSearch).
func traced(mux *http.ServeMux, next http.Handler) http.Handler {
	return otelhttp.NewHandler(next, "api", otelhttp.WithPropagators(tracing.Propagator()),
		otelhttp.WithSpanNameFormatter(func(_ string, r *http.Request) string {
			if _, p := mux.Handler(r); p != "" {
				return p // "GET /api/v1/orders/{id}"
			}
			return r.Method + " unmatched"
		}))
}

// tracedAnalytics runs each query of an Analytics in a span "analytics.<query>".
type tracedAnalytics struct{ Analytics }

func (a tracedAnalytics) Summary(ctx context.Context, f Filter) (s Summary, err error) {
	err = tracing.Run(ctx, "analytics.summary", func(ctx context.Context) error { s, err = a.Analytics.Summary(ctx, f); return err })
	return s, err
}

func (a tracedAnalytics) Breakdown(ctx context.Context, f Filter, dim Dimension) (b []Bucket, err error) {
	err = tracing.Run(ctx, "analytics.breakdown", func(ctx context.Context) error { b, err = a.Analytics.Breakdown(ctx, f, dim); return err })
	return b, err
}

func (a tracedAnalytics) TopProducts(ctx context.Context, f Filter, order ProductOrder, limit int) (p []Product, err error) {
	err = tracing.Run(ctx, "analytics.top_products", func(ctx context.Context) error {
		p, err = a.Analytics.TopProducts(ctx, f, order, limit)
		return err
	})
	return p, err
}

func (a tracedAnalytics) ReturnRate(ctx context.Context, f Filter) (r ReturnRate, err error) {
	err = tracing.Run(ctx, "analytics.return_rate", func(ctx context.Context) error { r, err = a.Analytics.ReturnRate(ctx, f); return err })
	return r, err
}

// tracedSearch runs each query of a Search in a span "search.<query>".
type tracedSearch struct{ inner Search }

func (s tracedSearch) Search(ctx context.Context, req SearchRequest) (res SearchResult, err error) {
	err = tracing.Run(ctx, "search.search", func(ctx context.Context) error { res, err = s.inner.Search(ctx, req); return err })
	return res, err
}

func (s tracedSearch) Get(ctx context.Context, id string) (o Order, err error) {
	err = tracing.Run(ctx, "search.get", func(ctx context.Context) error { o, err = s.inner.Get(ctx, id); return err },
		tracing.KeyOrderID.String(id))
	return o, err
}
