package status

import (
	"context"
	"fmt"
	"time"

	"github.com/orderstream/orderstream/consumers"
	"github.com/twmb/franz-go/pkg/kgo"
)

// EventTimes are the Kafka record timestamps (when the relay produced the
// event) around a group's position.
type EventTimes struct {
	// LastProcessed is the timestamp of the newest record the group has
	// committed, over every partition; zero when it committed nothing.
	LastProcessed time.Time
	// OldestPending is the timestamp of the oldest record the group has not
	// committed yet; zero when it has no lag.
	OldestPending time.Time
}

// Staleness is how long the oldest pending record has waited at now; 0
// without lag.
func (t EventTimes) Staleness(now time.Time) time.Duration {
	if t.OldestPending.IsZero() {
		return 0
	}
	return max(0, now.Sub(t.OldestPending))
}

// ReadEventTimes reads, on every partition of g, the record before the
// group's position and the record at it (at most two records per
// partition) with a short-lived client of seeds. ctx bounds the read;
// callers give it a deadline (a few seconds).
func ReadEventTimes(ctx context.Context, seeds []string, topic string, g consumers.Group, opts ...kgo.Opt) (EventTimes, error) {
	var out EventTimes
	from := map[int32]kgo.Offset{}
	want := map[int32]map[int64]bool{} // partition → offsets still to read
	for _, p := range g.Partitions {
		pos := p.Position()
		offs := map[int64]bool{}
		if pos > p.Start {
			offs[pos-1] = true
		}
		if pos < p.End {
			offs[pos] = true
		}
		if len(offs) == 0 {
			continue
		}
		want[p.Partition] = offs
		from[p.Partition] = kgo.NewOffset().At(max(p.Start, pos-1))
	}
	if len(from) == 0 {
		return out, nil
	}
	positions := map[int32]int64{}
	for _, p := range g.Partitions {
		positions[p.Partition] = p.Position()
	}
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(seeds...),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: from}),
		kgo.FetchMaxPartitionBytes(1 << 20)}, opts...)...)
	if err != nil {
		return out, fmt.Errorf("event times of %s: %w", topic, err)
	}
	defer cl.Close()
	for len(want) > 0 {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			return out, fmt.Errorf("event times of %s (group %s): %w", topic, g.Group, err)
		}
		fs.EachRecord(func(r *kgo.Record) {
			offs := want[r.Partition]
			if len(offs) == 0 {
				return
			}
			pos := positions[r.Partition]
			switch {
			case r.Offset < pos:
				if r.Timestamp.After(out.LastProcessed) {
					out.LastProcessed = r.Timestamp.UTC()
				}
				delete(offs, r.Offset)
			default: // the first record at or after the position (gaps: compaction, aborted)
				if out.OldestPending.IsZero() || r.Timestamp.Before(out.OldestPending) {
					out.OldestPending = r.Timestamp.UTC()
				}
				delete(offs, pos)
				delete(offs, pos-1)
			}
			if len(offs) == 0 {
				delete(want, r.Partition)
				cl.PauseFetchPartitions(map[string][]int32{topic: {r.Partition}})
			}
		})
	}
	return out, nil
}
