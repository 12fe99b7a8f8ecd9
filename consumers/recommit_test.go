package consumers

import (
	"context"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// failCommits makes the next n OffsetCommit requests to c fail on every
// partition with a non-retriable error, as a commit that meets a cluster
// going down or a group in flux does from the consumer's side.
func failCommits(c *kfake.Cluster, n int) {
	left := n
	c.ControlKey(int16(kmsg.OffsetCommit), func(req kmsg.Request) (kmsg.Response, error, bool) {
		if left == 0 {
			return nil, nil, false
		}
		left--
		c.KeepControl()
		r := req.(*kmsg.OffsetCommitRequest)
		resp := r.ResponseKind().(*kmsg.OffsetCommitResponse)
		for _, t := range r.Topics {
			rt := kmsg.NewOffsetCommitResponseTopic()
			rt.Topic = t.Topic
			for _, p := range t.Partitions {
				rp := kmsg.NewOffsetCommitResponseTopicPartition()
				rp.Partition = p.Partition
				rp.ErrorCode = kerr.OffsetMetadataTooLarge.Code
				rt.Partitions = append(rt.Partitions, rp)
			}
			resp.Topics = append(resp.Topics, rt)
		}
		return resp, nil, true
	})
}

// TestFailedCommitRetriedWithoutNewRecords: the commits of the batches
// written fail and no record arrives afterwards (the end of a replay). The
// consumer commits the written offsets again on its own, so the group's lag
// reaches zero without a rebalance or a restart, and nothing is written
// twice.
func TestFailedCommitRetriedWithoutNewRecords(t *testing.T) {
	const topic, n = "recommit", 40
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(2, topic))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	brokers := c.ListenAddrs()
	produce(t, brokers, topic, n)
	failCommits(c, 3)

	rec := newRecorder()
	sink := &fakeSink{WriteFn: func(_ context.Context, b []Record) error { rec.record(b); return nil }}
	cons, err := New(testConfig(brokers, topic), sink, WithLogger(testLogger(t)), fastGroup())
	if err != nil {
		t.Fatal(err)
	}
	stop, _ := start(t, cons)
	eventually(t, 10*time.Second, "every record written", func() bool { return rec.distinct() == n })
	eventually(t, 10*time.Second, "the written offsets committed", func() bool {
		return sum(committed(t, brokers, cons.cfg.Group, topic)) == n
	})
	if got := counterValue(t, cons, "orderstream_consumer_commit_failures_total"); got < 1 {
		t.Fatalf("commit failures counted %v, want the injected ones", got)
	}
	if err := stop(); err != nil {
		t.Fatalf("Run: %v", err)
	}
	if rec.total() != n {
		t.Fatalf("%d writes of %d records: a record was written twice", rec.total(), n)
	}
}
