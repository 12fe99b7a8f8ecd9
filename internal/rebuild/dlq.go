package rebuild

import (
	"context"
	"errors"
	"fmt"

	"github.com/orderstream/orderstream/consumers"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// DLQCounts are the records of a DLQ topic by the group that dead-lettered
// them (header dlq_group; "" for records without it).
type DLQCounts struct {
	Total   int64            `json:"total"`
	ByGroup map[string]int64 `json:"by_group"`
}

// CountDLQ reads the headers of every record of dlqTopic up to its end
// offsets. A missing topic counts zero. ctx bounds the read.
func CountDLQ(ctx context.Context, adm *kadm.Client, seeds []string, dlqTopic string, opts ...kgo.Opt) (DLQCounts, error) {
	out := DLQCounts{ByGroup: map[string]int64{}}
	topics, err := adm.ListTopics(ctx, dlqTopic)
	if err != nil {
		return out, fmt.Errorf("dlq %s: list topics: %w", dlqTopic, err)
	}
	if t, ok := topics[dlqTopic]; !ok || errors.Is(t.Err, kerr.UnknownTopicOrPartition) {
		return out, nil
	}
	starts, ends, err := TopicOffsets(ctx, adm, dlqTopic)
	if err != nil {
		return out, err
	}
	from := map[int32]kgo.Offset{}
	remaining := map[int32]int64{}
	for p, end := range ends {
		if end > starts[p] {
			from[p] = kgo.NewOffset().At(starts[p])
			remaining[p] = end
		}
	}
	if len(from) == 0 {
		return out, nil
	}
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(seeds...),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{dlqTopic: from})}, opts...)...)
	if err != nil {
		return out, fmt.Errorf("dlq %s: %w", dlqTopic, err)
	}
	defer cl.Close()
	for len(remaining) > 0 {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			return out, fmt.Errorf("read dlq %s: %w", dlqTopic, err)
		}
		fs.EachRecord(func(r *kgo.Record) {
			end, open := remaining[r.Partition]
			if !open || r.Offset >= end {
				return
			}
			if r.Offset+1 >= end {
				delete(remaining, r.Partition)
			}
			group := ""
			for _, h := range r.Headers {
				if h.Key == consumers.HeaderDLQGroup {
					group = string(h.Value)
				}
			}
			out.Total++
			out.ByGroup[group]++
		})
	}
	return out, nil
}
