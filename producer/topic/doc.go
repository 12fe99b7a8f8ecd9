// Package topic provisions and audits the Kafka topic of order events.
//
// Provision creates the topic with infinite retention (retention.ms=-1,
// retention.bytes=-1) and cleanup.policy=delete, so that "replay from offset
// zero" really replays every event ever relayed; compaction or a finite
// retention would silently replay a fraction. It is idempotent: for an
// existing topic it verifies the same settings and the partition count
// instead (a changed partition count would move order ids to other
// partitions and break per-order ordering).
//
// CheckReplayable is the one answer to "can this topic still be replayed
// from offset zero": those settings and every partition's log start offset
// 0. Watcher runs it periodically for the relay and the projection daemons
// (an ERROR line per change, a gauge); status and the cutover checks call it.
// For the relay the Watcher also re-judges the topic's replication
// (Info.ReplicationProblems, checked at start by RequireReplicated), since an
// operator can lower min.insync.replicas or drop replicas while it runs.
//
// ReadStats reads the whole topic (every partition from its earliest offset
// up to the high watermark seen at start) and checks what the relay
// promises: per order, aggregate_version is 1..n without gaps in offset
// order, and no event id appears twice. CompareOutbox adds the check
// "exactly one Kafka event per outbox event".
package topic
