package testfixture

import (
	"context"
	"fmt"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/orderstream/orderstream/internal/testenv"
	"github.com/orderstream/orderstream/schemas"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"golang.org/x/sync/errgroup"
)

// Topic settings of ProduceTopic.
const (
	TopicPartitions = 12
	// EventSource is the CloudEvents ce_source of every event the relay writes.
	EventSource = schemas.EventSource
)

// values caches validated envelope JSON by event id for the test binary:
// validation costs about 0.4 ms of CPU per event and tests produce the same
// real events again and again. Event ids are unique UUIDv7s.
var values sync.Map // uuid.UUID -> []byte

// Record returns the Kafka record the relay writes for e: key = aggregate id,
// value = the validated envelope JSON (as stored in outbox.envelope), and the
// contract's headers (schemas.RecordHeaders: CloudEvents 1.0 binary mode,
// traceparent when set, aggregate_version, ce_dataschema, schema_version). relay_position is the relay's
// own and is not set here.
func Record(v *schemas.Validator, topic string, e schemas.Envelope) (*kgo.Record, error) {
	value, err := EnvelopeJSON(v, e)
	if err != nil {
		return nil, err
	}
	h := schemas.RecordHeaders(make([]kgo.RecordHeader, 0, 11), schemas.RecordFields{
		EventID: e.EventID.String(), EventType: e.EventType, AggregateID: e.AggregateID,
		AggregateVersion: e.AggregateVersion, OccurredAt: e.OccurredAt, Traceparent: e.Traceparent, SchemaVersion: e.SchemaVersion,
	})
	return &kgo.Record{Topic: topic, Key: []byte(e.AggregateID), Value: value, Headers: h}, nil
}

// EnvelopeJSON returns e serialized and validated as the write side stores
// it in outbox.envelope and the relay writes it as a record's value
// (v.Marshal), byte for byte. It is cached by event id for the test binary;
// the slice is shared, do not modify it.
func EnvelopeJSON(v *schemas.Validator, e schemas.Envelope) ([]byte, error) {
	if b, ok := values.Load(e.EventID); ok {
		return b.([]byte), nil
	}
	b, err := v.Marshal(e)
	if err != nil {
		return nil, err
	}
	values.Store(e.EventID, b)
	return b, nil
}

// Records returns the records of events for topic (see Record), in slice
// order. Serialization and JSON Schema validation (the costly part, about
// 0.4 ms of CPU per event) run on GOMAXPROCS goroutines, once per event and
// test binary (the values are cached by event id).
func Records(topic string, events []schemas.Envelope) ([]*kgo.Record, error) {
	recs := make([]*kgo.Record, len(events))
	err := eachEvent(events, func(v *schemas.Validator, i int) (err error) {
		recs[i], err = Record(v, topic, events[i])
		return err
	})
	if err != nil {
		return nil, err
	}
	return recs, nil
}

// EnvelopesJSON returns EnvelopeJSON of every event, in slice order,
// computed on GOMAXPROCS goroutines (cached like Records' values).
func EnvelopesJSON(events []schemas.Envelope) ([][]byte, error) {
	out := make([][]byte, len(events))
	err := eachEvent(events, func(v *schemas.Validator, i int) (err error) {
		out[i], err = EnvelopeJSON(v, events[i])
		return err
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// eachEvent runs fn for every index of events on GOMAXPROCS goroutines,
// with one validator; the first error, naming its event, wins.
func eachEvent(events []schemas.Envelope, fn func(v *schemas.Validator, i int) error) error {
	v, err := schemas.NewValidator()
	if err != nil {
		return err
	}
	var g errgroup.Group
	workers := runtime.GOMAXPROCS(0)
	for w := range workers {
		g.Go(func() error {
			for i := w; i < len(events); i += workers {
				if err := fn(v, i); err != nil {
					return fmt.Errorf("event %s of order %s: %w", events[i].EventID, events[i].AggregateID, err)
				}
			}
			return nil
		})
	}
	return g.Wait()
}

// ProduceTopic creates a fresh topic (unique name "fixture_<hex>",
// TopicPartitions partitions, the broker default replication factor (1 on
// the single local broker, 3 on the cluster profile), the events topic's settings
// of schemas.ReplayTopicConfigs), produces events to it in slice order with an
// idempotent acks=all producer (franz-go's default partitioner, murmur2 on
// the key like Java clients, so all events of one order share a partition
// in version order), waits until every record is acknowledged and returns the
// topic's name. The topic is deleted at the test's cleanup. Any failure fails
// the test. opts reach Kafka (TLS, SASL: internal/connect.Kafka.ClientOpts)
// for a secured broker; none for the plain local one.
func ProduceTopic(t testing.TB, brokers []string, events []schemas.Envelope, opts ...kgo.Opt) string {
	t.Helper()
	// Validating the real file's events alone takes up to 2 min on a loaded
	// two-core machine.
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	topic := testenv.Name("fixture")
	start := time.Now()

	cl, err := kgo.NewClient(append([]kgo.Opt{
		kgo.SeedBrokers(brokers...),
		kgo.DefaultProduceTopic(topic),
		kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.ProducerLinger(5 * time.Millisecond),
		kgo.ProducerBatchMaxBytes(1 << 20),
		kgo.MaxBufferedRecords(20000),
		// A topic just created may be missing from a broker's metadata for
		// a moment (longer on a loaded machine): retry until ctx ends
		// rather than fail after the default 4 tries.
		kgo.UnknownTopicRetries(-1),
	}, opts...)...)
	if err != nil {
		t.Fatalf("kafka client: %v", err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	resp, err := adm.CreateTopic(ctx, TopicPartitions, -1, schemas.ReplayTopicConfigs(), topic)
	if err == nil {
		err = resp.Err
	}
	if err != nil {
		t.Fatalf("create topic %s: %v", topic, err)
	}
	testenv.WaitTopic(ctx, t, adm, topic, TopicPartitions)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(brokers...)}, opts...)...)
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
	recs, err := Records(topic, events)
	if err != nil {
		t.Fatalf("records for %s: %v", topic, err)
	}
	encoded := time.Now()
	var (
		mu       sync.Mutex
		firstErr error
	)
	for _, rec := range recs {
		cl.Produce(ctx, rec, func(_ *kgo.Record, err error) {
			if err != nil {
				mu.Lock()
				if firstErr == nil {
					firstErr = err
				}
				mu.Unlock()
			}
		})
	}
	if err := cl.Flush(ctx); err != nil {
		t.Fatalf("flush to %s: %v", topic, err)
	}
	mu.Lock()
	defer mu.Unlock()
	if firstErr != nil {
		t.Fatalf("produce to %s: %v", topic, firstErr)
	}
	t.Logf("topic %s: created in %s, %d events validated in %s, produced in %s", topic, created.Sub(start).Round(time.Millisecond),
		len(events), encoded.Sub(created).Round(time.Millisecond), time.Since(encoded).Round(time.Millisecond))
	return topic
}
