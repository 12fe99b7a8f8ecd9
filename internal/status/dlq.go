package status

import (
	"context"
	"errors"
	"fmt"

	"github.com/orderstream/orderstream/consumers"
	"github.com/orderstream/orderstream/producer/topic"
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
// offsets and counts the dead letters (re-drive markers are not counted). A missing topic counts zero. ctx bounds the read.
func CountDLQ(ctx context.Context, adm *kadm.Client, seeds []string, dlqTopic string, opts ...kgo.Opt) (DLQCounts, error) {
	out := DLQCounts{ByGroup: map[string]int64{}}
	topics, err := adm.ListTopics(ctx, dlqTopic)
	if err != nil {
		return out, fmt.Errorf("dlq %s: list topics: %w", dlqTopic, err)
	}
	if t, ok := topics[dlqTopic]; !ok || errors.Is(t.Err, kerr.UnknownTopicOrPartition) {
		return out, nil
	}
	starts, ends, err := consumers.TopicOffsets(ctx, adm, dlqTopic)
	if err != nil {
		return out, err
	}
	err = topic.ReadRange(ctx, seeds, dlqTopic, starts, ends, func(r *kgo.Record) {
		if !consumers.IsDeadLetter(r) {
			return // a re-drive marker
		}
		group := ""
		for _, h := range r.Headers {
			if h.Key == consumers.HeaderDLQGroup {
				group = string(h.Value)
			}
		}
		out.Total++
		out.ByGroup[group]++
	}, opts...)
	if err != nil {
		return out, fmt.Errorf("dlq: %w", err)
	}
	return out, nil
}
