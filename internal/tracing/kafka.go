package tracing

import (
	"context"
	"strconv"

	"github.com/twmb/franz-go/pkg/kgo"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"
)

// StartSend starts the producer span "send <topic>" of one event that the
// relay hands to Kafka, as a child of the event's stored context
// (traceparent, tracestate: the outbox's). An event without a valid stored
// context gets no span (a no-op one): the relay continues traces, it starts
// none. The caller puts Headers(ctx) in the record's headers and ends the
// span when Kafka acked, with SetOffset.
func StartSend(ctx context.Context, topic string, partition int32, traceparent, tracestate string, attrs ...attribute.KeyValue) (context.Context, trace.Span) {
	parent := SpanContext(traceparent, tracestate)
	if !parent.IsValid() {
		return ctx, trace.SpanFromContext(context.Background())
	}
	ctx = trace.ContextWithRemoteSpanContext(ctx, parent)
	return Tracer().Start(ctx, "send "+topic, trace.WithSpanKind(trace.SpanKindProducer), trace.WithAttributes(
		append(attrs, KeyMessagingSystem.String("kafka"), KeyMessagingOperation.String("send"),
			KeyDestination.String(topic), KeyPartition.String(strconv.Itoa(int(partition))))...))
}

// SetOffset records the offset Kafka gave the record of a "send" span.
func SetOffset(span trace.Span, offset int64) { span.SetAttributes(KeyOffset.Int64(offset)) }

// RecordHeader returns the value of the header key of r, "" when absent.
func RecordHeader(r *kgo.Record, key string) string {
	for _, h := range r.Headers {
		if h.Key == key {
			return string(h.Value)
		}
	}
	return ""
}

// StartBatch starts the consumer span "process <topic>" of one batch of
// records: a root span (kind consumer; a batch belongs to many traces) with,
// while it records, a link to the context in every record's traceparent and
// tracestate headers, each with the record's partition, offset and key (the
// order id). Records without a valid context get no link; the span keeps at
// most the provider's link limit (DefaultLinkLimit).
func StartBatch(ctx context.Context, topic, group string, recs []*kgo.Record) (context.Context, trace.Span) {
	ctx, span := Tracer().Start(ctx, "process "+topic, trace.WithNewRoot(), trace.WithSpanKind(trace.SpanKindConsumer),
		trace.WithAttributes(KeyMessagingSystem.String("kafka"), KeyMessagingOperation.String("process"),
			KeyDestination.String(topic), KeyConsumerGroup.String(group), KeyBatchCount.Int(len(recs))))
	if !span.IsRecording() {
		return ctx, span
	}
	for _, r := range recs {
		sc := SpanContext(RecordHeader(r, "traceparent"), RecordHeader(r, "tracestate"))
		if !sc.IsValid() {
			continue
		}
		span.AddLink(trace.Link{SpanContext: sc, Attributes: []attribute.KeyValue{
			KeyPartition.String(strconv.Itoa(int(r.Partition))), KeyOffset.Int64(r.Offset), KeyMessageKey.String(string(r.Key)),
		}})
	}
	return ctx, span
}
