// Package store is the write side's PostgreSQL adapter: the order repository
// (optimistic concurrency on aggregate_version), the transactional outbox and
// the embedded, versioned SQL migrations.
//
// Guarantees:
//   - An order's state, its lines and its new events are written in one
//     transaction; either all land or none.
//   - A writer whose loaded version is stale gets ErrConflict and writes
//     nothing (never a lost update). UNIQUE (aggregate_id, aggregate_version)
//     on the outbox backs this up at the database level.
//   - Every event is validated against its JSON Schema before it is written.
package store
