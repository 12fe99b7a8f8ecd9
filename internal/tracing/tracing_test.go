package tracing_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/orderstream/orderstream/internal/tracing"
	"github.com/orderstream/orderstream/schemas"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.opentelemetry.io/otel"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace/noop"
)

func TestEnabled(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		give map[string]string
		want bool
	}{
		{"nothing set", nil, false},
		{"an OTLP endpoint", map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"}, true},
		{"a traces endpoint", map[string]string{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://127.0.0.1:4318/v1/traces"}, true},
		{"exporter otlp", map[string]string{"OTEL_TRACES_EXPORTER": "otlp"}, true},
		{"exporter none wins over an endpoint", map[string]string{"OTEL_TRACES_EXPORTER": "none", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://x"}, false},
		{"SDK disabled", map[string]string{"OTEL_SDK_DISABLED": "TRUE", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://x"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := tracing.Enabled(func(k string) string { return tt.give[k] }); got != tt.want {
				t.Errorf("Enabled = %v, want %v", got, tt.want)
			}
		})
	}
}

// The Kafka headers and the outbox carry exactly what the W3C propagator
// reads and writes, under the contract's header names.
func TestHeaderNamesAreTheContracts(t *testing.T) {
	t.Parallel()
	if got, want := tracing.Propagator().Fields(), []string{schemas.HeaderTraceparent, schemas.HeaderTracestate}; !slices.Equal(got, want) {
		t.Errorf("propagator fields %v, want the contract's headers %v", got, want)
	}
}

// Setup (not parallel: it installs the global provider) honours the OTEL_*
// variables: spans reach an OTLP/HTTP endpoint, the sampler is the one
// OTEL_TRACES_SAMPLER names, an unknown protocol or exporter is refused.
func TestSetup(t *testing.T) {
	t.Cleanup(func() { otel.SetTracerProvider(noop.NewTracerProvider()) })
	var requests atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		if r.URL.Path == "/v1/traces" {
			requests.Add(1)
		}
		w.WriteHeader(http.StatusOK)
	}))
	defer srv.Close()
	for _, tt := range []struct {
		name      string
		sampler   string
		wantSpans bool
	}{
		{"always_on", "always_on", true},
		{"always_off", "always_off", false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", srv.URL)
			t.Setenv("OTEL_TRACES_SAMPLER", tt.sampler)
			before := requests.Load()
			shutdown, err := tracing.Setup(context.Background(), tracing.Config{Service: "orderstream-test"})
			if err != nil {
				t.Fatal(err)
			}
			ctx, span := tracing.Start(context.Background(), "a command", "")
			if tp := tracing.Traceparent(ctx); tp == "" {
				t.Error("no traceparent with tracing on")
			}
			span.End()
			sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if err := shutdown(sctx); err != nil {
				t.Fatal(err)
			}
			if got := requests.Load() > before; got != tt.wantSpans {
				t.Errorf("spans exported: %v, want %v", got, tt.wantSpans)
			}
		})
	}
	for _, tt := range []struct{ key, val, want string }{
		{"OTEL_EXPORTER_OTLP_PROTOCOL", "http/json", "OTEL_EXPORTER_OTLP_PROTOCOL"},
		{"OTEL_TRACES_EXPORTER", "zipkin", "OTEL_TRACES_EXPORTER"},
	} {
		t.Run(tt.val, func(t *testing.T) {
			t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", srv.URL)
			t.Setenv(tt.key, tt.val)
			if _, err := tracing.Setup(context.Background(), tracing.Config{}); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Setup with %s=%s: %v, want an error naming %s", tt.key, tt.val, err, tt.want)
			}
		})
	}
}

// Without a provider, contexts pass through unchanged: a stored
// traceparent reaches the Kafka headers as it is, none is invented.
func TestOffPassesContextThrough(t *testing.T) {
	otel.SetTracerProvider(noop.NewTracerProvider())
	const tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	ctx, span := tracing.StartSend(context.Background(), "orders", 0, tp, "")
	defer span.End()
	if got := tracing.Traceparent(ctx); got != tp || span.IsRecording() {
		t.Errorf("traceparent after a send span with tracing off = %q, want %q", got, tp)
	}
	ctx, span = tracing.StartSend(context.Background(), "orders", 0, "", "")
	defer span.End()
	if got := tracing.Traceparent(ctx); got != "" {
		t.Errorf("traceparent of an event without context = %q, want none", got)
	}
	if got := tracing.Traceparent(tracing.WithRemote(context.Background(), "00-not-valid", "")); got != "" {
		t.Errorf("traceparent from an invalid one = %q, want none", got)
	}
}

// A batch span links each record's context with its partition, offset and
// key, and skips records without one.
func TestStartBatchLinks(t *testing.T) {
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	otel.SetTracerProvider(tp)
	t.Cleanup(func() { otel.SetTracerProvider(noop.NewTracerProvider()) })
	tr := tp.Tracer("test")
	pctx, parent := tr.Start(context.Background(), "send")
	tpHeader := tracing.Traceparent(pctx)
	parent.End()
	recs := []*kgo.Record{
		{Partition: 3, Offset: 41, Key: []byte("order-1"), Headers: []kgo.RecordHeader{{Key: schemas.HeaderTraceparent, Value: []byte(tpHeader)}}},
		{Partition: 3, Offset: 42, Key: []byte("order-2")},
	}
	_, span := tracing.StartBatch(context.Background(), "orders", "g", recs)
	span.End()
	spans := exp.GetSpans()
	b := spans[len(spans)-1]
	if len(b.Links) != 1 || b.Links[0].SpanContext.SpanID() != parent.SpanContext().SpanID() {
		t.Fatalf("links %+v, want one to the send span", b.Links)
	}
	got := map[string]string{}
	for _, a := range b.Links[0].Attributes {
		got[string(a.Key)] = a.Value.Emit()
	}
	if got[string(tracing.KeyPartition)] != "3" || got[string(tracing.KeyOffset)] != "41" || got[string(tracing.KeyMessageKey)] != "order-1" {
		t.Errorf("link attributes %v, want partition 3, offset 41, key order-1", got)
	}
}
