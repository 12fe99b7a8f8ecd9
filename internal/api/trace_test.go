package api

import (
	"net/http"
	"testing"

	"go.opentelemetry.io/otel"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
)

// Every request gets a server span named by its route, continuing the
// caller's W3C context, with the read-model query as its child.
func TestTracing(t *testing.T) {
	exp := tracetest.NewInMemoryExporter()
	otel.SetTracerProvider(sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp)))
	t.Cleanup(func() { otel.SetTracerProvider(noop.NewTracerProvider()) })
	h := newTestServer(t, &fakeAnalytics{}, &fakeSearch{}).Handler()
	tests := []struct {
		name, target, wantServer, wantQuery, traceID string
	}{
		{"analytics", "/api/v1/analytics/summary", "GET /api/v1/analytics/summary", "analytics.summary", "4bf92f3577b34da6a3ce929d0e0e4736"},
		{"order", "/api/v1/orders/o-1", "GET /api/v1/orders/{id}", "search.get", "5bf92f3577b34da6a3ce929d0e0e4737"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := get(t, h, tt.target, "traceparent", "00-"+tt.traceID+"-00f067aa0ba902b7-01")
			if w.Code != http.StatusOK {
				t.Fatalf("GET %s: %d %s", tt.target, w.Code, w.Body)
			}
			var server, query sdktrace.ReadOnlySpan
			for _, s := range exp.GetSpans().Snapshots() {
				if s.SpanContext().TraceID().String() != tt.traceID {
					continue
				}
				switch s.Name() {
				case tt.wantServer:
					server = s
				case tt.wantQuery:
					query = s
				}
			}
			if server == nil || query == nil {
				t.Fatalf("spans of trace %s: server %v, query %v; want %q and %q", tt.traceID, server != nil, query != nil, tt.wantServer, tt.wantQuery)
			}
			if server.SpanKind() != trace.SpanKindServer || server.Parent().SpanID().String() != "00f067aa0ba902b7" {
				t.Errorf("server span kind %s, parent %s; want a server span under the caller's", server.SpanKind(), server.Parent().SpanID())
			}
			if query.Parent().SpanID() != server.SpanContext().SpanID() {
				t.Errorf("query span's parent %s, want the server span %s", query.Parent().SpanID(), server.SpanContext().SpanID())
			}
		})
	}
}
