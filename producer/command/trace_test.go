package command_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/orderstream/orderstream/producer/command"
	"github.com/orderstream/orderstream/producer/order"
	"github.com/orderstream/orderstream/schemas"
	"go.opentelemetry.io/otel"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace/noop"
)

// mdStore records the metadata of the last save.
type mdStore struct {
	*fakeStore
	md schemas.Metadata
}

func (s *mdStore) Save(ctx context.Context, o *order.Order, md schemas.Metadata) error {
	s.md = md
	return s.fakeStore.Save(ctx, o, md)
}

// A command runs in its span, under the caller's traceparent when given,
// and the events it saves carry the span's traceparent.
func TestCommandSpan(t *testing.T) {
	exp := tracetest.NewInMemoryExporter()
	otel.SetTracerProvider(sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp)))
	t.Cleanup(func() { otel.SetTracerProvider(noop.NewTracerProvider()) })
	const caller = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	for _, give := range []string{"", caller} {
		exp.Reset()
		s := &mdStore{fakeStore: &fakeStore{state: placedSale(t), SaveFn: func(int, *order.Order) error { return nil }}}
		h := command.NewHandler(s, func(error) bool { return false })
		if err := h.Pay(context.Background(), "o-1", t0, gbp("20"), "", schemas.Metadata{Traceparent: give}); err != nil {
			t.Fatal(err)
		}
		spans := exp.GetSpans()
		if len(spans) != 1 || spans[0].Name != "order.pay" {
			t.Fatalf("spans %v, want one order.pay", spans)
		}
		sc := spans[0].SpanContext
		if want := fmt.Sprintf("00-%s-%s-01", sc.TraceID(), sc.SpanID()); s.md.Traceparent != want {
			t.Errorf("saved traceparent %q, want the command span's %q", s.md.Traceparent, want)
		}
		if give != "" && (sc.TraceID().String() != "4bf92f3577b34da6a3ce929d0e0e4736" || spans[0].Parent.SpanID().String() != "00f067aa0ba902b7") {
			t.Errorf("span %s under %s, want a child of the caller's %s", sc.SpanID(), spans[0].Parent.SpanID(), caller)
		}
	}
}
