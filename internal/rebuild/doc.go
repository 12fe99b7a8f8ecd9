// Package rebuild rebuilds a projection's read model from the events topic,
// guards its cutover and verifies a read model against the write side.
//
// # Rebuilds
//
// Shadow (the default, zero downtime): a new generation N+1 is created
// beside the serving generation N (new ClickHouse tables, a new search
// index); from that moment the projection daemon, which writes every live
// generation, also writes every new event to N+1. A consumer group of its
// own (orderstream-<projection>-g<N+1>; ShadowConfig.Members consumers,
// default 2, sharing the partitions) then reads the topic from offset zero
// in strict mode into N+1 only. When its committed offsets reach the
// end offsets listed at the moment it first caught up, it goes on for a
// short settle time, then Cutover switches the readers (the analytics
// views by one RENAME TABLE on 18.16 and one CREATE OR REPLACE VIEW each on
// current releases; one _aliases call in the search engine). N
// stays, kept current by the daemon, for Rollback; the temporary group is
// deleted. Nothing is lost between the two groups: events before the end
// offsets are replayed, and events after them reach N+1 through the daemon;
// both sinks are idempotent (the order's aggregate_version is the version),
// so the overlap changes nothing.
//
// Cutover checks (CheckCutover), before every cutover: every partition's log
// start offset was 0; the rebuild wrote end − start records on every
// partition (Consumed); the new generation's orders and versions
// (ReadModel.OrderVersions) equal the write side's (WriteSide, PostgresWriteSide)
// apart from events past the rebuild's end offsets (CompareVersions). A
// failed check refuses the cutover with a *GuardError naming what is
// missing; ShadowConfig.Force cuts over anyway, logging it at WARN.
//
// Strict mode: an event that cannot be decoded or that the read model
// rejects stops the rebuild with an error naming its topic, partition and
// offset (consumers.StrictError); generation N+1 stays building, nothing is
// cut over, and the daemon keeps serving N.
//
// In place: the projection's own group is moved back to the earliest offset
// (or an offset or timestamp) with kafka-consumer-groups semantics, and the
// serving generation is cleared. It refuses while the group has members,
// naming them, and only plans unless told to execute.
//
// # Inspection
//
// What a rebuild reads of the pipeline has its owners: consumer groups and
// topic offsets the consumer runtime (consumers.InspectGroup,
// consumers.TopicOffsets), the relay's state producer/relay (Inspect), the
// pipeline's health and catch-up rules internal/status.
package rebuild
