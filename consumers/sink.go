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
