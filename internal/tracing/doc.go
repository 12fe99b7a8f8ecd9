// Package tracing is the one owner of orderstream's OpenTelemetry tracing:
// it builds the tracer provider from the standard OTEL_* environment
// variables (Setup) and gives the write side, the relay, the consumer
// runtime, the sinks and the API the few calls they need to start spans and
// to carry the W3C trace context through the outbox and the Kafka headers.
//
// Tracing is off unless configured: without Setup, or when Setup finds no
// exporter configured, every call here is a no-op on OpenTelemetry's global
// no-op provider (a span carries its parent's context and records nothing),
// so the outbox and the Kafka headers pass a stored traceparent through
// unchanged and add none.
//
// The chain of one event (ARCHITECTURE.md, Tracing):
//
//	import document ─▶ command (its traceparent is stored in the outbox row and the envelope)
//	  └▶ relay: "send <topic>" (producer span, child of the stored context; its
//	     context goes into the record's traceparent / tracestate headers)
//	       ┄▶ consumer: "process <topic>" (one root span per batch, a link to every
//	          record's context) ─▶ the sink's write per generation (ClickHouse insert,
//	          bulk request) and "commit"
//
// The API's server spans (otelhttp) have the read-model query as a child.
package tracing
