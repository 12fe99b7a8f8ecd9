package testfixture_test

import (
	"context"
	"testing"
	"time"

	"github.com/orderstream/orderstream/internal/testenv"
	"github.com/orderstream/orderstream/internal/testfixture"
	"github.com/orderstream/orderstream/schemas"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

func TestProduceTopic(t *testing.T) {
	brokers := testenv.KafkaBrokers(t)
	evs := testfixture.RealEvents(t)
	topic := testfixture.ProduceTopic(t, brokers, evs)

	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	ends, err := kadm.NewClient(cl).ListEndOffsets(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	var total int64
	ends.Each(func(o kadm.ListedOffset) { total += o.Offset })
	if total != int64(len(evs)) || len(ends[topic]) != testfixture.TopicPartitions {
		t.Fatalf("topic %s: %d records in %d partitions, want %d in %d", topic, total, len(ends[topic]), len(evs), testfixture.TopicPartitions)
	}

	byID := make(map[string]schemas.Envelope, len(evs))
	for _, e := range evs {
		byID[e.EventID.String()] = e
	}
	partitionOf := map[string]int32{}
	lastVersion := map[string]int64{}
	seen := 0
	for seen < len(evs) {
		fs := cl.PollFetches(ctx)
		if err := fs.Err0(); err != nil {
			t.Fatalf("after %d records: %v", seen, err)
		}
		fs.EachRecord(func(r *kgo.Record) {
			seen++
			h := map[string]string{}
			for _, x := range r.Headers {
				h[x.Key] = string(x.Value)
			}
			want, ok := byID[h["ce_id"]]
			if !ok {
				t.Fatalf("record with unknown ce_id %q", h["ce_id"])
			}
			if string(r.Key) != want.AggregateID || h["ce_type"] != want.EventType || h["ce_subject"] != want.AggregateID ||
				h["ce_source"] != testfixture.EventSource || h["ce_specversion"] != "1.0" || h["content-type"] != "application/json" {
				t.Fatalf("record %s: key %q headers %v", h["ce_id"], r.Key, h)
			}
			got, err := schemas.ParseEnvelope(r.Value)
			if err != nil || got.AggregateVersion != want.AggregateVersion || !got.OccurredAt.Equal(want.OccurredAt) {
				t.Fatalf("record %s: value %s (%v)", h["ce_id"], r.Value, err)
			}
			if p, ok := partitionOf[want.AggregateID]; ok && p != r.Partition {
				t.Fatalf("order %s in partitions %d and %d", want.AggregateID, p, r.Partition)
			}
			partitionOf[want.AggregateID] = r.Partition
			if got.AggregateVersion != lastVersion[want.AggregateID]+1 {
				t.Fatalf("order %s: version %d after %d", want.AggregateID, got.AggregateVersion, lastVersion[want.AggregateID])
			}
			lastVersion[want.AggregateID] = got.AggregateVersion
		})
	}
}
