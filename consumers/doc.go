// Package consumers is the consumer-group runtime every projection runs on
// (franz-go): at-least-once delivery with offsets committed only after the
// sink wrote durably, per-partition ordered batches, cooperative-sticky
// rebalancing, retries with backoff while a partition is paused, and a
// dead-letter queue (<topic>.dlq) for records that can never be written.
package consumers
