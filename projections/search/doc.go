// Package search is the search read model of orders: one document per order
// in Elasticsearch 8/9 (production) or OpenSearch 2.x, kept up to date from
// the order events by a consumers.Sink, and queried by Query (full text,
// filters, facets, cursor pagination) for the CLI and the HTTP API.
//
// # Layout
//
//   - document.go: event → document folding (Order, apply), mirroring the
//     write side's aggregate.
//   - mapping.go: the index template (strict mapping, product analyzer).
//   - admin.go: generations and aliases (Setup, CreateGeneration, Cutover,
//     Rollback, DropGeneration).
//   - sink.go, bulk.go: the Sink (fold, read, bulk with external versions).
//   - query.go: Query.Search and Query.Get.
//   - engine.go, opensearch.go, elasticsearch.go: the Engine interface and
//     its two adapters. Both adapters send the very same JSON bodies; each
//     only transports them with its official client
//     (github.com/opensearch-project/opensearch-go/v4,
//     github.com/elastic/go-elasticsearch/v8).
//
// # Names and generations
//
// Writes and reads go through aliases (Names): queries read the read alias
// <prefix> ("orders"), which points to exactly one generation index
// <prefix>_v<n>; the daemon writes every generation in the write alias
// <prefix>_write. Setup creates generation 1 on first start. A rebuild
// creates generation n+1 (CreateGeneration adds it to the write alias, so
// live events reach it too), fills it with a sink bound to it, then Cutover
// swaps both aliases atomically; the old generation stays in the write alias,
// current, until DropGeneration, so Rollback is instant.
//
// # Guarantees of the Sink
//
//   - Idempotent and order-safe. Every document is indexed with
//     version = the order's aggregate_version and version_type=external
//     (never the Kafka offset): the engine applies it only when it is newer
//     than what the index holds. A 409 version conflict means "already
//     applied" and is counted, not an error. Redelivered batches, replays of
//     the whole topic and an older event arriving after a newer one change
//     nothing.
//   - Full documents, no partial updates. Each event must yield the whole
//     document at its version. Partial (scripted) updates cannot carry an
//     external version, so they would give up the engine-enforced ordering;
//     instead the sink folds: within one Write it groups the events per order
//     (placed + paid of one order in a batch become one document at the
//     highest version, one index operation), and for an order whose first
//     event in the batch is not order.placed it reads the current document
//     (realtime multi-get) and applies the newer events to it. Events of one
//     order share a partition and arrive in version order, so the document
//     read already holds every earlier version (or a later one, and the
//     events are skipped as already applied); should two writers race on one
//     order (the daemon and a rebuild), both compute the same document for
//     the same version from the same events, and the external version makes
//     the loser's write fail with a harmless conflict. Documents are a pure
//     function of the events: updated_at is the event's occurred_at, not the
//     time of indexing.
//   - Soft delete only. Nothing is ever removed with a DELETE (the engines
//     forget a deleted document's version after index.gc_deletes, 60 s, and
//     an older replayed event would resurrect it); a deleted order is a
//     document with deleted=true at its version, hidden by Query.
//   - Bounded and retried. Bulk requests carry at most MaxBulkBytes (5 MiB)
//     with at most MaxInFlight (2) in flight per Write. A request answered
//     429 or 5xx, or not answered, is retried with exponential backoff
//     (cenkalti/backoff/v5); per item, a 409 is success, 429/5xx items are
//     sent again, and any other 4xx (mapping or parse error) is permanent:
//     the records folded into that document come back in a
//     *consumers.RejectedError (the runtime's DLQ). Events that can never
//     apply — undecodable, unknown type, or not order.placed for an order
//     with no document in the serving generation — are rejected the same way.
//     When the engine stays down longer than RetryTimeout, Write returns a
//     transient error and the runtime retries the batch; nothing is lost.
//
// # Money and times
//
// Money stays exact: total, paid, refunded and unit_price are decimal
// strings (keyword, not indexed); total_milli (long, thousandths of the
// currency unit) is a numeric copy of total for sorting only. Times are UTC
// (placed_at = occurred_at of order.placed).
package search
