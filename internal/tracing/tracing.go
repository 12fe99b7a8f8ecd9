package tracing

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

// Scope is the instrumentation scope of every span orderstream starts.
const Scope = "github.com/orderstream/orderstream"

// DefaultLinkLimit is the most links a span keeps when
// OTEL_SPAN_LINK_COUNT_LIMIT is not set (the SDK's own default is 128): the
// consumer runtime's default batch size (consumers.DefaultBatchMaxRecords),
// so that a batch span links every record of a default batch.
const DefaultLinkLimit = 5000

// Attribute keys. The messaging ones are OpenTelemetry's semantic
// conventions (semconv 1.40, messaging); the orderstream.* ones are this
// project's.
const (
	KeyMessagingSystem    = attribute.Key("messaging.system")                   // "kafka"
	KeyMessagingOperation = attribute.Key("messaging.operation.type")           // "send", "process"
	KeyDestination        = attribute.Key("messaging.destination.name")         // topic
	KeyPartition          = attribute.Key("messaging.destination.partition.id") // partition, decimal string
	KeyOffset             = attribute.Key("messaging.kafka.offset")             // int
	KeyMessageKey         = attribute.Key("messaging.kafka.message.key")        // the record key: the order id
	KeyConsumerGroup      = attribute.Key("messaging.consumer.group.name")
	KeyBatchCount         = attribute.Key("messaging.batch.message_count")
	KeyOrderID            = attribute.Key("orderstream.order_id")
	KeyOrderNumber        = attribute.Key("orderstream.order_number")
	KeyEventID            = attribute.Key("orderstream.event_id")
	KeyAggregateVersion   = attribute.Key("orderstream.aggregate_version")
	KeyProjection         = attribute.Key("orderstream.projection")
	KeyGeneration         = attribute.Key("orderstream.generation")
	KeyRows               = attribute.Key("orderstream.rows")
)

// propagator is the W3C Trace Context format (traceparent, tracestate): the
// one format of the outbox column, the envelope and the Kafka headers (the
// CloudEvents distributed-tracing extension). A stateless value.
var propagator propagation.TextMapPropagator = propagation.TraceContext{}

// Propagator returns the W3C Trace Context propagator (for otelhttp).
func Propagator() propagation.TextMapPropagator { return propagator }

// Tracer returns orderstream's tracer from the global provider Setup
// installs (a no-op one without Setup).
func Tracer() trace.Tracer { return otel.Tracer(Scope) }

// Config configures Setup.
type Config struct {
	// Service is service.name when OTEL_SERVICE_NAME (or service.name in
	// OTEL_RESOURCE_ATTRIBUTES) does not set it, e.g. "orderstream-relay".
	Service string
}

// Enabled reports whether the environment turns tracing on: an exporter is
// configured (OTEL_TRACES_EXPORTER other than "none", or an OTLP endpoint
// in OTEL_EXPORTER_OTLP_TRACES_ENDPOINT or OTEL_EXPORTER_OTLP_ENDPOINT) and
// OTEL_SDK_DISABLED is not "true".
func Enabled(getenv func(string) string) bool {
	if strings.EqualFold(getenv("OTEL_SDK_DISABLED"), "true") {
		return false
	}
	if e := getenv("OTEL_TRACES_EXPORTER"); e != "" {
		return e != "none"
	}
	return getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") != "" || getenv("OTEL_EXPORTER_OTLP_ENDPOINT") != ""
}

// Setup installs the global tracer provider configured by the standard
// OTEL_* variables and returns its shutdown, which exports the spans still
// buffered (call it once, under a deadline, before the process exits).
// When tracing is not Enabled it installs nothing and returns a no-op
// shutdown.
//
// Read from the environment (by the OpenTelemetry SDK and exporters, as the
// OpenTelemetry specification's "Environment Variable Specification" says):
// OTEL_TRACES_EXPORTER (otlp, the default once an endpoint is set, or
// none), OTEL_EXPORTER_OTLP[_TRACES]_PROTOCOL (grpc or http/protobuf, the
// default), OTEL_EXPORTER_OTLP[_TRACES]_ENDPOINT, _HEADERS, _TIMEOUT,
// _INSECURE, _CERTIFICATE; OTEL_TRACES_SAMPLER and OTEL_TRACES_SAMPLER_ARG
// (default parentbased_always_on); OTEL_SERVICE_NAME,
// OTEL_RESOURCE_ATTRIBUTES; OTEL_BSP_* (the batch span processor);
// OTEL_SPAN_*_LIMIT, with the link limit DefaultLinkLimit unless
// OTEL_SPAN_LINK_COUNT_LIMIT is set.
//
// Errors: an exporter or protocol this build does not have, naming the
// variable; a bad exporter setting.
func Setup(ctx context.Context, cfg Config) (shutdown func(context.Context) error, err error) {
	getenv := os.Getenv
	noop := func(context.Context) error { return nil }
	if !Enabled(getenv) {
		return noop, nil
	}
	if e := getenv("OTEL_TRACES_EXPORTER"); e != "" && e != "otlp" {
		return noop, fmt.Errorf("OTEL_TRACES_EXPORTER=%q: this build exports traces with otlp only (or none to turn tracing off)", e)
	}
	proto, from := getenv("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"), "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"
	if proto == "" {
		proto, from = getenv("OTEL_EXPORTER_OTLP_PROTOCOL"), "OTEL_EXPORTER_OTLP_PROTOCOL"
	}
	var exp sdktrace.SpanExporter
	switch proto {
	case "", "http/protobuf":
		exp, err = otlptracehttp.New(ctx)
	case "grpc":
		exp, err = otlptracegrpc.New(ctx)
	default:
		return noop, fmt.Errorf("%s=%q: want grpc or http/protobuf", from, proto)
	}
	if err != nil {
		return noop, fmt.Errorf("trace exporter (OTEL_EXPORTER_OTLP_*): %w", err)
	}
	res, err := resource.New(ctx, resource.WithTelemetrySDK(),
		resource.WithAttributes(attribute.String("service.name", cfg.Service)), resource.WithFromEnv())
	if err != nil && !errors.Is(err, resource.ErrPartialResource) {
		return noop, fmt.Errorf("trace resource (OTEL_RESOURCE_ATTRIBUTES, OTEL_SERVICE_NAME): %w", err)
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp), sdktrace.WithResource(res), sdktrace.WithSpanLimits(Limits(getenv)))
	otel.SetTracerProvider(tp)
	return tp.Shutdown, nil
}

// Limits returns the span limits of OTEL_SPAN_*_LIMIT, with LinkCountLimit
// DefaultLinkLimit unless OTEL_SPAN_LINK_COUNT_LIMIT is set.
func Limits(getenv func(string) string) sdktrace.SpanLimits {
	l := sdktrace.NewSpanLimits()
	if getenv("OTEL_SPAN_LINK_COUNT_LIMIT") == "" {
		l.LinkCountLimit = DefaultLinkLimit
	}
	return l
}

// Start starts an internal span name under ctx's span (or under the remote
// context of traceparent when ctx holds no span and traceparent is a valid
// W3C traceparent; "" for none).
func Start(ctx context.Context, name, traceparent string, attrs ...attribute.KeyValue) (context.Context, trace.Span) {
	if traceparent != "" && !trace.SpanContextFromContext(ctx).IsValid() {
		ctx = WithRemote(ctx, traceparent, "")
	}
	return Tracer().Start(ctx, name, trace.WithAttributes(attrs...))
}

// End records err (when not nil) as the span's error status and ends it.
func End(span trace.Span, err error) {
	if err != nil {
		span.RecordError(err)
		span.SetStatus(codes.Error, err.Error())
	}
	span.End()
}

// Run runs fn in a span name under ctx, recording fn's error, and returns
// that error.
func Run(ctx context.Context, name string, fn func(context.Context) error, attrs ...attribute.KeyValue) error {
	ctx, span := Tracer().Start(ctx, name, trace.WithAttributes(attrs...))
	err := fn(ctx)
	End(span, err)
	return err
}

// Traceparent returns the W3C traceparent of ctx's span, "" when ctx holds
// no valid span context (tracing off and no remote parent).
func Traceparent(ctx context.Context) string {
	tp, _ := Headers(ctx)
	return tp
}

// Headers returns the W3C traceparent and tracestate of ctx's span ("" when
// there is none, or no trace state).
func Headers(ctx context.Context) (traceparent, tracestate string) {
	sc := trace.SpanContextFromContext(ctx)
	if !sc.IsValid() {
		return "", ""
	}
	c := propagation.MapCarrier{}
	propagator.Inject(ctx, c)
	return c["traceparent"], c["tracestate"]
}

// WithRemote returns ctx holding the remote span context of traceparent
// and tracestate; ctx unchanged when traceparent is not a valid W3C
// traceparent.
func WithRemote(ctx context.Context, traceparent, tracestate string) context.Context {
	if traceparent == "" {
		return ctx
	}
	c := propagation.MapCarrier{"traceparent": traceparent}
	if tracestate != "" {
		c["tracestate"] = tracestate
	}
	return propagator.Extract(ctx, c)
}

// SpanContext returns the remote span context of traceparent and
// tracestate (invalid when traceparent is not a valid W3C traceparent).
func SpanContext(traceparent, tracestate string) trace.SpanContext {
	return trace.SpanContextFromContext(WithRemote(context.Background(), traceparent, tracestate))
}
