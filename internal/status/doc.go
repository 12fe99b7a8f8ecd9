// Package status decides what healthy and caught up mean for the pipeline
// — relay, events topic, DLQ and every projection's read model and
// consumer group — and inspects the services to judge them. It is the
// application behind `orderstream status` and what a readiness endpoint
// reuses.
//
// Inspector.Observe reads (only reads) PostgreSQL (producer/relay's
// Inspect), Kafka (offsets, replayability, groups, event times, the DLQ)
// and each read model's generations; Evaluate judges an Observation
// against Limits with no I/O, so each rule is table-tested. The rules are
// listed on Evaluate.
//
// A wait (Wait) for the pipeline to catch up fixes two targets across
// looks: the WAL position of the first relay inspection, and the topic's
// end offsets at the first look where the relay had relayed everything
// committed before it (relay.Inspection.RelayedUpTo). Caught up then
// means every group committed up to those offsets.
package status
