package testfixture

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/orderstream/orderstream/internal/testenv"
	"github.com/orderstream/orderstream/schemas"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Topic settings of ProduceTopic.
const (
	TopicPartitions = 12
	// EventSource is the CloudEvents ce_source of every event the relay writes.
	EventSource = "/orderstream/producer"
)

// Record returns the Kafka record the relay writes for e: key = aggregate id,
// value = the validated envelope JSON (as stored in outbox.envelope), and the
// CloudEvents 1.0 binary-mode headers ce_id, ce_type, ce_source,
// ce_specversion, ce_time (occurred_at, RFC 3339), ce_subject, content-type,
// traceparent (when set) and aggregate_version (decimal). relay_position is
// the relay's own and is not set here.
func Record(v *schemas.Validator, topic string, e schemas.Envelope) (*kgo.Record, error) {
	value, err := v.Marshal(e)
	if err != nil {
		return nil, err
	}
	h := []kgo.RecordHeader{
		{Key: "ce_id", Value: []byte(e.EventID.String())},
		{Key: "ce_type", Value: []byte(e.EventType)},
		{Key: "ce_source", Value: []byte(EventSource)},
		{Key: "ce_specversion", Value: []byte("1.0")},
		{Key: "ce_time", Value: []byte(e.OccurredAt.UTC().Format(time.RFC3339Nano))},
		{Key: "ce_subject", Value: []byte(e.AggregateID)},
		{Key: "content-type", Value: []byte("application/json")},
	}
	if e.Traceparent != "" {
		h = append(h, kgo.RecordHeader{Key: "traceparent", Value: []byte(e.Traceparent)})
	}
	h = append(h, kgo.RecordHeader{Key: "aggregate_version", Value: []byte(strconv.FormatInt(e.AggregateVersion, 10))})
	return &kgo.Record{Topic: topic, Key: []byte(e.AggregateID), Value: value, Headers: h}, nil
}

// ProduceTopic creates a fresh topic (unique name "fixture_<hex>",
// TopicPartitions partitions, replication 1, retention.ms=-1,
// cleanup.policy=delete), produces events to it in slice order with an
// idempotent acks=all producer (franz-go's default partitioner, murmur2 on
// the key like Java clients, so all events of one order share a partition
// in version order), waits until every record is acknowledged and returns the
// topic's name. The topic is deleted at the test's cleanup. Any failure fails
// the test.
func ProduceTopic(t testing.TB, brokers []string, events []schemas.Envelope) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	topic := testenv.Name("fixture")
	start := time.Now()

	cl, err := kgo.NewClient(
		kgo.SeedBrokers(brokers...),
		kgo.DefaultProduceTopic(topic),
		kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.ProducerLinger(5*time.Millisecond),
		kgo.ProducerBatchMaxBytes(1<<20),
		kgo.MaxBufferedRecords(20000),
	)
	if err != nil {
		t.Fatalf("kafka client: %v", err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	retention := "-1"
	policy := "delete"
	resp, err := adm.CreateTopic(ctx, TopicPartitions, 1, map[string]*string{
		"retention.ms":   &retention,
		"cleanup.policy": &policy,
	}, topic)
	if err == nil {
		err = resp.Err
	}
	if err != nil {
		t.Fatalf("create topic %s: %v", topic, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
		if err != nil {
			t.Logf("delete topic %s: %v", topic, err)
			return
		}
		defer cl.Close()
		resp, err := kadm.NewClient(cl).DeleteTopic(ctx, topic)
		if err == nil {
			err = resp.Err
		}
		if err != nil {
			t.Logf("delete topic %s: %v", topic, err)
		}
	})

	created := time.Now()
	v, err := schemas.NewValidator()
	if err != nil {
		t.Fatalf("validator: %v", err)
	}
	// Metadata may lag the creation on a fresh topic; franz-go retries
	// UNKNOWN_TOPIC_OR_PARTITION itself until the context ends.
	results := make(chan error, 1)
	var firstErr error
	failed := func(err error) {
		select {
		case results <- err:
		default:
		}
	}
	for _, e := range events {
		rec, err := Record(v, topic, e)
		if err != nil {
			t.Fatalf("event %s of %s: %v", e.EventID, e.AggregateID, err)
		}
		cl.Produce(ctx, rec, func(_ *kgo.Record, err error) {
			if err != nil {
				failed(err)
			}
		})
	}
	if err := cl.Flush(ctx); err != nil {
		t.Fatalf("flush to %s: %v", topic, err)
	}
	select {
	case firstErr = <-results:
	default:
	}
	if firstErr != nil {
		t.Fatalf("produce to %s: %v", topic, firstErr)
	}
	t.Logf("topic %s: created in %s, %d events produced in %s", topic, created.Sub(start).Round(time.Millisecond),
		len(events), time.Since(created).Round(time.Millisecond))
	return topic
}
