// Package relay is the CDC relay: it copies every row of the transactional
// outbox to the Kafka topic of order events, in commit order.
//
// Two sources:
//   - WAL (default): logical replication with pgoutput (protocol 1,
//     messages on) from the slot's confirmed position. On the first run it
//     creates the publication (FOR TABLE outbox WITH (publish = 'insert'))
//     and the slot, and backfills the rows committed before the slot existed
//     from the slot's exported snapshot.
//   - poll: SELECT … ORDER BY (tx_id, id) below the visibility watermark
//     pg_snapshot_xmin(pg_current_snapshot()), for databases without logical
//     replication. A transaction open anywhere on the server holds the
//     watermark; the lag metric then shows the waiting rows' age and a WARN
//     names the blocking backend (see pollLag).
//
// Kafka records: key = aggregate_id, value = outbox.envelope byte for byte,
// CloudEvents binary-mode headers (ce_id, ce_type, ce_source
// "/orderstream/producer", ce_specversion "1.0", ce_time, ce_subject,
// content-type), traceparent when set, aggregate_version and relay_position
// (see Position). The partition is Kafka's default for keyed records
// (murmur2 of the key, as Java clients compute it; kgo.StickyKeyPartitioner
// with a nil hasher), computed by the relay so the duplicate rule knows it.
// The producer is idempotent with acks=all and unlimited retries.
//
// Guarantees:
//   - At least once: a WAL position is confirmed to PostgreSQL (and first
//     written to relay_checkpoint) only up to the end of the last
//     transaction that, with every earlier one, had its COMMIT seen and all
//     its events acked by Kafka; keepalive replies carry that position too.
//     The poll cursor moves only after the whole batch was acked.
//   - Nearly exactly once: on start the relay finds the last record it wrote
//     in every partition (the last with a relay_position header, reading
//     back past records others appended, at most Config.DuplicateScan
//     records); an event whose position is at or before that record's is
//     skipped (counted in orderstream_relay_duplicates_skipped_total).
//     Positions grow within a partition, so only events a crash left
//     unconfirmed are redone, and those already in Kafka are skipped. A
//     partition without a relay record within the bound is logged (WARN)
//     and gets no check.
//   - Per-order order: events of an order share a key, hence a partition,
//     and are produced in commit order by an idempotent producer.
//   - Bounded memory: at most Config.MaxInFlight events and
//     Config.MaxInFlightBytes of them are in flight; the relay stops reading
//     the slot (answering the server meanwhile) until Kafka acks. No
//     transaction is buffered whole.
//   - Slot loss is detected (relay_checkpoint vs pg_replication_slots) and
//     stops the relay with ErrSlotLost instead of resuming from "now".
//   - One active relay per slot: a session-level advisory lock; others wait
//     as standbys and take over when the active session ends.
//   - A lost connection to PostgreSQL (a restart) ends a session, not Run:
//     the relay waits for Kafka's acks of what it produced, reconnects with
//     backoff and starts over (lock, slot check, partitions' last records),
//     visible as state "reconnecting" and in
//     orderstream_relay_reconnects_total and
//     orderstream_relay_postgres_connected.
//   - An idle outbox does not pin WAL: a heartbeat logical message every
//     Config.Heartbeat moves the confirmed position.
//   - Relayed rows older than Config.OutboxRetention are purged (see purge).
//
// The relay's tables (relay_checkpoint, relay_poll_cursor; DDL in
// producer/relay/migrations, applied by store.Migrate) are read and written
// by this package only: Inspect reports the relay's state to others
// (`orderstream status`, the cutover guard) and ResetSlot starts a slot
// afresh.
package relay
