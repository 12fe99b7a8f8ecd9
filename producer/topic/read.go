package topic

import (
	"context"
	"errors"
	"fmt"

	"github.com/twmb/franz-go/pkg/kgo"
)

// ReadRange reads every record of topic in [starts[p], ends[p]) for each
// partition p of ends (a partition with nothing in range is skipped) and
// calls fn for each, in offset order per partition, from one goroutine. It
// returns when every range was read, on the first fetch error, or when ctx
// ends. opts are added to the client: how to reach Kafka (TLS, SASL:
// internal/connect.Kafka.ClientOpts) and test settings. Used by the
// stats audit and the DLQ count, which both read a topic up to the end
// offsets they listed first.
func ReadRange(ctx context.Context, seeds []string, topic string, starts, ends map[int32]int64, fn func(*kgo.Record), opts ...kgo.Opt) error {
	from := map[int32]kgo.Offset{}
	remaining := map[int32]int64{} // partition → end offset still to reach
	for p, end := range ends {
		if end > starts[p] {
			from[p] = kgo.NewOffset().At(starts[p])
			remaining[p] = end
		}
	}
	if len(from) == 0 {
		return nil
	}
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(seeds...),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: from}),
		kgo.FetchMaxBytes(64 << 20), kgo.FetchMaxPartitionBytes(16 << 20)}, opts...)...)
	if err != nil {
		return fmt.Errorf("consume %s: %w", topic, err)
	}
	defer cl.Close()
	for len(remaining) > 0 {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("read %s: %w", topic, err)
		}
		var ferr error
		fs.EachError(func(_ string, p int32, err error) { ferr = errors.Join(ferr, fmt.Errorf("partition %d: %w", p, err)) })
		if ferr != nil {
			return fmt.Errorf("read %s: %w", topic, ferr)
		}
		fs.EachRecord(func(r *kgo.Record) {
			end, open := remaining[r.Partition]
			if !open || r.Offset >= end {
				return
			}
			if r.Offset+1 >= end {
				delete(remaining, r.Partition)
			}
			fn(r)
		})
	}
	return nil
}
