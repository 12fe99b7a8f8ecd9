package testenv

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
)

// WaitTopic waits, for up to a minute or until ctx ends, until the broker
// adm asks lists topic with partitions partitions, each with a leader: a
// topic just created may be missing from a broker's metadata for a moment
// (longer on a loaded machine), and a client that uses it at once fails
// with UNKNOWN_TOPIC_OR_PARTITION. It fails t when the topic is not ready.
func WaitTopic(ctx context.Context, t testing.TB, adm *kadm.Client, topic string, partitions int) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	var last string
	for {
		last = topicReadiness(ctx, adm, topic, partitions)
		if last == "" {
			return
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			t.Fatalf("topic %s not ready: %s", topic, last)
		}
		time.Sleep(50 * time.Millisecond) // polling metadata with a deadline
	}
}

// topicReadiness returns what keeps topic from being ready; "" when it is.
func topicReadiness(ctx context.Context, adm *kadm.Client, topic string, partitions int) string {
	tds, err := adm.ListTopics(ctx, topic)
	if err != nil {
		return err.Error()
	}
	td, ok := tds[topic]
	switch {
	case !ok:
		return "not listed"
	case td.Err != nil:
		return td.Err.Error()
	case len(td.Partitions) != partitions:
		return fmt.Sprintf("%d of %d partitions listed", len(td.Partitions), partitions)
	}
	for _, p := range td.Partitions {
		if p.Err != nil || p.Leader < 0 {
			return fmt.Sprintf("partition %d: leader %d, %v", p.Partition, p.Leader, p.Err)
		}
	}
	return ""
}
