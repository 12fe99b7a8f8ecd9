package consumers

import (
	"context"
	"fmt"
	"time"

	"github.com/orderstream/orderstream/schemas"
)

// Record is one Kafka record handed to a Sink, with its decoded envelope.
type Record struct {
	Topic     string
	Partition int32
	Offset    int64
	Key       []byte
	Timestamp time.Time // the Kafka record timestamp
	Event     schemas.Envelope
}

// Sink applies events to a read model. The runtime calls Write from one
// goroutine at a time.
//
// Write receives records of one or more partitions; the records of each
// partition are in offset order. When Write returns nil every record must be
// durable in the read model: the runtime then commits their offsets. Write
// must be idempotent: the same records may be written again after a crash,
// rebalance or replay, and must not change any answer of the read model.
//
// Errors:
//   - *RejectedError: the listed records can never be written (the rest of
//     the batch is durable); the runtime sends them to the DLQ (or, in strict
//     mode, stops and names their offsets) and moves on.
//   - any other error is transient: the runtime retries the whole batch with
//     exponential backoff while fetching of its partitions is paused.
type Sink interface {
	Write(ctx context.Context, batch []Record) error
}

// Preparer is implemented by a Sink whose Write splits into CPU work without
// side effects (decoding payloads, building rows or documents) and the write
// itself. The runtime then prepares the next batch while the current one is
// being written, so that decoding overlaps the read model's I/O; without it
// only polling and envelope decoding overlap.
//
// Prepare may run concurrently with the Write of an earlier prepared batch
// (never with another Prepare); it must not block on I/O. For a Preparer,
// Write(ctx, batch) must behave as Prepare(batch).Write(ctx).
type Preparer interface {
	Sink
	Prepare(batch []Record) Prepared
}

// Prepared is a batch made ready by Preparer.Prepare. Write has the contract
// of Sink.Write for that batch (errors included) and is called again after a
// transient error.
type Prepared interface {
	Write(ctx context.Context) error
}

// RejectedError lists the records of a batch that a Sink rejected
// permanently, by index in the batch, with the reason for each.
type RejectedError struct {
	Rejected map[int]error
}

func (e *RejectedError) Error() string {
	for i, err := range e.Rejected {
		return fmt.Sprintf("%d record(s) rejected, e.g. #%d: %v", len(e.Rejected), i, err)
	}
	return "no records rejected"
}
