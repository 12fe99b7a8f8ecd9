package tracing_test

import (
	"context"
	"strconv"
	"syscall"
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

// BenchmarkSpans measures the CPU cost tracing adds per event on its hot
// paths, off and on (parentbased_traceidratio 0.1, batch span processor,
// spans discarded by the exporter): the write side's span and traceparent
// (per document), the relay's send span and headers (per event), the
// consumer's batch span with its links (per record of a 1,000-record
// batch). Besides ns/op (wall clock) it reports cpu-ns/op, the process's
// CPU time per operation, which a loaded machine disturbs much less.
// BenchmarkTracingOverhead (internal/rebuild) puts them against the whole
// pipeline.
func BenchmarkSpans(b *testing.B) {
	ctx := context.Background()
	stored := "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00" // unsampled, as 90 % are
	recs := make([]*kgo.Record, 1000)
	for i := range recs {
		tp := stored
		if i%10 == 0 {
			tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
		}
		recs[i] = &kgo.Record{Partition: 1, Offset: int64(i), Key: []byte("order-" + strconv.Itoa(i)),
			Headers: []kgo.RecordHeader{{Key: schemas.HeaderTraceparent, Value: []byte(tp)}}}
	}
	for _, mode := range []string{"off", "on"} {
		if mode == "on" {
			otel.SetTracerProvider(sdktrace.NewTracerProvider(
				sdktrace.WithBatcher(tracetest.NewNoopExporter()),
				sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.TraceIDRatioBased(0.1)))))
		} else {
			otel.SetTracerProvider(noop.NewTracerProvider())
		}
		b.Run(mode+"/command", func(b *testing.B) {
			defer cpuPerOp(b)()
			for range b.N {
				c, span := tracing.Start(ctx, "import document", "", tracing.KeyOrderNumber.String("536365"))
				_ = tracing.Traceparent(c)
				tracing.End(span, nil)
			}
		})
		b.Run(mode+"/send", func(b *testing.B) {
			defer cpuPerOp(b)()
			for range b.N {
				c, span := tracing.StartSend(ctx, "orders", 1, stored, "", tracing.KeyOrderID.String("o"), tracing.KeyAggregateVersion.Int64(1))
				if span.SpanContext().IsSampled() {
					_, _ = tracing.Headers(c)
				}
				tracing.SetOffset(span, 42)
				tracing.End(span, nil)
			}
		})
		b.Run(mode+"/batch-of-1000", func(b *testing.B) {
			defer cpuPerOp(b)()
			for range b.N {
				_, span := tracing.StartBatch(ctx, "orders", "g", recs)
				tracing.End(span, nil)
			}
		})
	}
	otel.SetTracerProvider(noop.NewTracerProvider())
}

// cpuPerOp starts counting the process's CPU time; the function it returns
// reports it per operation as cpu-ns/op.
func cpuPerOp(b *testing.B) func() {
	cpu := func() time.Duration {
		var ru syscall.Rusage
		if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
			b.Fatal(err)
		}
		return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	start := cpu()
	return func() { b.ReportMetric(float64(cpu()-start)/float64(b.N), "cpu-ns/op") }
}
