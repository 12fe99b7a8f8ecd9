// Package schemas holds orderstream's event contracts: the envelope every
// event travels in, the order event payloads (Go types of CurrentVersion),
// their JSON Schema files of every version (schemas/v1/*.json,
// schemas/v2/*.json, embedded), the upcasters that turn an event of any
// known version into the newest shape (and the writers' way back), the
// compatibility check of these files against a previous release's
// (CheckCompatibility), the validator that checks every event before it is
// written to the outbox, the fold (Fold) that says
// which status an order's events leave it in, applied by the write side and
// by every read model, and the Kafka wire format: the record headers
// (RecordHeaders, Header*) and the settings of every topic that holds
// events (ReplayTopicConfigs). It imports no Kafka client.
//
// Guarantees:
//   - Money is an exact decimal (github.com/shopspring/decimal) with an ISO
//     4217 currency; it is encoded as a JSON string ("2.55"), never as a JSON
//     number, so no reader parses it as a binary double.
//   - Quantities are integers.
//   - Timestamps are RFC 3339 in UTC.
//   - An event is valid only if both its envelope and its payload validate
//     against the schema named by (event_type, schema_version).
//   - A published version's schema never changes beyond annotations, and
//     every version below CurrentVersion has an upcaster to the next
//     (CheckCompatibility; `make test` runs it): an event written by any
//     release reaches today's readers in today's shape.
//   - Every value is inside one documented range (limits.go): what every
//     store — PostgreSQL, Kafka, ClickHouse, OpenSearch/Elasticsearch — holds
//     exactly, sums included. The JSON Schema files state it where they can;
//     the write side (order aggregate, CSV import) enforces all of it, so no
//     read model refuses what the write side accepted.
//
// Projections import this package and never the producer.
package schemas
