// Package consumers is the consumer-group runtime every projection runs on
// (franz-go): a Consumer polls the orders topic as a member of the
// projection's group and hands batches of decoded events to a Sink.
//
// Guarantees, and where they are enforced:
//
//   - At-least-once: offsets are committed explicitly (autocommit off), per
//     partition, only after Sink.Write returned nil for the batch and every
//     record of it that goes to the DLQ was acknowledged by the broker
//     (flush.go, flusher). A crash between write and commit redelivers the batch; the
//     sinks are idempotent, so a redelivery changes no answer.
//   - Order: the records of one partition reach the sink in offset order;
//     a batch may hold several partitions.
//   - Batches are bounded by records, bytes of record values and time
//     (Config.BatchMaxRecords/BatchMaxBytes/BatchMaxWait); gathering spans
//     polls (batch.go).
//   - Pipelining: while a batch is written, the next one is polled, its
//     envelopes parsed and, for a Preparer sink, prepared (flush.go,
//     readAhead); writes stay sequential, commits follow them.
//   - Rebalances: cooperative-sticky; polls block rebalances until the
//     polled records are gathered, and a revoke writes and commits the
//     gathered batch before the partitions move (bounded by ShutdownTimeout;
//     past it the records are left uncommitted for the new owner).
//   - Read-model outages: a transient Write error is retried with
//     exponential backoff and jitter, forever, while fetching of the batch's
//     partitions is paused and the group membership stays alive (franz-go
//     heartbeats in the background); when the read model recovers the
//     consumer goes on by itself.
//   - Versions: every event is upcast to schemas.CurrentVersion
//     (schemas.Upcasters, WithUpcasters) after its envelope is parsed and
//     before any sink sees it, so sinks read one shape; the record in Kafka
//     is not changed. An event of a version newer than the binary reads is
//     poison (schemas.ErrNewerVersion) until an upgraded binary re-drives it.
//   - Poison records: a record that is not a valid event envelope
//     (schemas.ParseEnvelope, strict), whose key is not its event's
//     aggregate_id (parking goes by the key), of an unknown version, or
//     that the sink rejects (a payload
//     that does not decode or breaks the read model's rules,
//     (*RejectedError) is copied to <topic>.dlq with headers naming its
//     origin, the reason and the group (HeaderDLQ*), then skipped. A copy
//     refused for its size stops Run naming the record (no retry can
//     succeed; nothing past it is committed). In Strict
//     mode (replays) it stops Run with a *StrictError naming topic,
//     partition and offset instead; everything before it is committed;
//     with SkipDeadLettered, records a daemon of the projection
//     dead-lettered are skipped and listed (Consumer.Skipped).
//   - Parking (park.go): once a record of an order is dead-lettered, the
//     group's later records of that order go to the DLQ behind it
//     (KindParked), in order, until a re-drive marker covers them. The
//     state is the DLQ itself (DLQState), read on start and followed; a
//     member catches up with it after every assignment before writing.
//   - Re-drive (Redrive): a group's dead letters are applied through its
//     own sink, per order in DLQ order, and KindRedriven markers appended
//     after the sink acknowledged; nothing goes back to the events topic,
//     other groups are not touched, a second re-drive applies nothing.
//   - Offsets: a new group starts at the earliest offset; a committed
//     offset outside the log is never reset silently: Run stops with an
//     *OffsetOutOfRangeError. A commit that fails after the write is
//     retried with backoff (RetryInitial up to RetryMax) while the member
//     owns the partition, even when no record arrives any more
//     (recommit.go).
//   - Shutdown: cancelling Run's context stops polling, finishes the
//     in-flight batch (write, DLQ, commit) within ShutdownTimeout, leaves
//     the group and returns nil.
//   - Restarts: with Config.InstanceID the member is static (KIP-345): a
//     restart with the same id takes its partitions back at once; it does
//     not leave the group on stop, so the partitions of a member that does
//     not come back wait Config.SessionTimeout (default 20s). A member
//     fenced by another with its id stops with a *FencedError.
//
// Observability: Prometheus metrics orderstream_consumer_* (lag per
// partition, events processed, DLQ'd, batch size and duration, retries,
// commit failures, last event time, up, ready) and Health for /healthz and
// /readyz, all served by Handler.
package consumers
