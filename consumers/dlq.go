package consumers

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/orderstream/orderstream/schemas"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Headers the runtime adds to a DLQ record, beside the original record's
// headers (kept as they were). Key and value are the original's.
const (
	HeaderDLQError           = "dlq_error"            // why the record could not be applied
	HeaderDLQKind            = "dlq_kind"             // KindDecode, KindRejected, KindParked (or KindRedriven on a re-drive marker)
	HeaderDLQSourceTopic     = "dlq_source_topic"     // topic the record was consumed from
	HeaderDLQSourcePartition = "dlq_source_partition" // its partition, decimal
	HeaderDLQSourceOffset    = "dlq_source_offset"    // its offset, decimal
	HeaderDLQAttempts        = "dlq_attempts"         // write attempts made, decimal (1 for decode failures, 0 for parked records)
	HeaderDLQFirstFailure    = "dlq_first_failure"    // first failure, RFC 3339 UTC
	HeaderDLQEventID         = "dlq_event_id"         // event id when known (envelope or ce_id)
	HeaderDLQGroup           = "dlq_group"            // consumer group that gave up on it
	HeaderDLQProjection      = "dlq_projection"       // projection of that group
)

// ensureDLQTopic creates the DLQ topic when missing, with as many partitions
// as the source topic (1 if the source does not exist yet) and infinite
// retention.
func (c *Consumer) ensureDLQTopic(ctx context.Context) error {
	return EnsureDLQTopic(ctx, c.adm, c.cfg.Topic, c.cfg.DLQTopic)
}

// EnsureDLQTopic creates dlqTopic when it does not exist, with the partition
// count of source (1 when source is missing), the broker's default
// replication factor and the events topic's settings
// (schemas.ReplayTopicConfigs: infinite retention, no compaction). An
// existing topic is left as it is.
func EnsureDLQTopic(ctx context.Context, adm *kadm.Client, source, dlqTopic string) error {
	topics, err := adm.ListTopics(ctx, source, dlqTopic)
	if err != nil {
		return fmt.Errorf("dlq topic %s: list topics: %w", dlqTopic, err)
	}
	if t, ok := topics[dlqTopic]; ok && t.Err == nil {
		return nil
	}
	parts := int32(1)
	if t, ok := topics[source]; ok && t.Err == nil && len(t.Partitions) > 0 {
		parts = int32(len(t.Partitions))
	}
	_, err = adm.CreateTopic(ctx, parts, -1, schemas.ReplayTopicConfigs(), dlqTopic)
	if err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
		return fmt.Errorf("create dlq topic %s: %w", dlqTopic, err)
	}
	return nil
}

// dlqRecord builds the DLQ copy of f.
func (c *Consumer) dlqRecord(f failure) *kgo.Record {
	r := f.rec
	hs := make([]kgo.RecordHeader, 0, len(r.Headers)+10)
	hs = append(hs, r.Headers...)
	add := func(k, v string) { hs = append(hs, kgo.RecordHeader{Key: k, Value: []byte(v)}) }
	add(HeaderDLQError, oneLineErr(f.reason, maxDLQError))
	add(HeaderDLQKind, f.kind)
	add(HeaderDLQSourceTopic, r.Topic)
	add(HeaderDLQSourcePartition, strconv.FormatInt(int64(r.Partition), 10))
	add(HeaderDLQSourceOffset, strconv.FormatInt(r.Offset, 10))
	add(HeaderDLQAttempts, strconv.Itoa(f.attempts))
	add(HeaderDLQFirstFailure, f.firstFail.UTC().Format(time.RFC3339))
	if f.eventID != "" {
		add(HeaderDLQEventID, f.eventID)
	}
	add(HeaderDLQGroup, c.cfg.Group)
	add(HeaderDLQProjection, c.cfg.Projection)
	return &kgo.Record{Topic: c.cfg.DLQTopic, Key: r.Key, Value: r.Value, Headers: hs, Timestamp: r.Timestamp}
}

// sendDLQ produces the failures to the DLQ topic and waits for the acks,
// retrying with backoff until they are acked or ctx ends. Only then may
// their offsets be committed.
//
// The records go in source order (partition, then offset): the dead letter
// of an order precedes the records parked behind it in the DLQ partition
// of its key. Once acked they are in the group's DLQ state: their orders are
// parked.
func (c *Consumer) sendDLQ(ctx context.Context, bad []failure) error {
	slices.SortFunc(bad, func(a, b failure) int {
		return cmp.Or(cmp.Compare(a.rec.Partition, b.rec.Partition), cmp.Compare(a.rec.Offset, b.rec.Offset))
	})
	recs := make([]*kgo.Record, len(bad))
	for i, f := range bad {
		recs[i] = c.dlqRecord(f)
	}
	bo := c.newBackoff()
	for attempt := 1; ; attempt++ {
		res := c.cl.ProduceSync(ctx, recs...)
		err := res.FirstErr()
		if err == nil {
			break
		}
		if err := tooLargeForDLQ(res, recs, bad, c.cfg.DLQTopic); err != nil {
			return err
		}
		wait := bo.NextBackOff()
		c.m.retries.Inc()
		c.log.Warn("dlq produce failed; retrying", "records", len(recs), "attempt", attempt, "retry_in", wait.String(), "err", err)
		if err := c.sleepUnlocked(ctx, wait); err != nil {
			return fmt.Errorf("produce %d records to dlq %s: %w", len(recs), c.cfg.DLQTopic, err)
		}
		// A rebalance may have dropped some of the batch meanwhile; sending
		// a record to the DLQ once more is harmless, so go on.
		for i, f := range bad {
			recs[i] = c.dlqRecord(f)
		}
	}
	if dl := c.dl.Load(); dl != nil {
		dl.with(func(st *DLQState) {
			for _, r := range recs {
				st.Add(r)
			}
		})
	}
	for _, f := range bad {
		c.m.dlq.WithLabelValues(f.kind).Inc()
		c.log.Warn("record sent to dlq", "partition", f.rec.Partition, "offset", f.rec.Offset, "event_id", f.eventID,
			"order_id", string(f.rec.Key), "dlq_topic", c.cfg.DLQTopic, "reason", f.kind, "err", oneLineErr(f.reason, maxDLQError))
	}
	return nil
}

// tooLargeForDLQ returns the error that stops the consumer when a DLQ copy
// was refused for its size (by the client or the broker): no retry can
// succeed, and committing past the record would lose it, so the run stops
// naming it. recs[i] is the copy of bad[i]. nil when no record of res was
// refused for its size.
func tooLargeForDLQ(res kgo.ProduceResults, recs []*kgo.Record, bad []failure, topic string) error {
	var errs []error
	for _, pr := range res { // in the order they completed
		i := slices.Index(recs, pr.Record)
		if i < 0 || !errors.Is(pr.Err, kerr.MessageTooLarge) && !errors.Is(pr.Err, kerr.RecordListTooLarge) {
			continue
		}
		f := bad[i]
		size := len(pr.Record.Key) + len(pr.Record.Value)
		for _, h := range pr.Record.Headers {
			size += len(h.Key) + len(h.Value)
		}
		errs = append(errs, fmt.Errorf("record of %s partition %d offset %d (order %.128q, %s: %v) is too large to dead-letter: "+
			"its copy to %s (%d bytes with the dead-letter headers) was refused: %w; nothing from it on was committed: "+
			"delete it from %s (records before offset %d, kafka-delete-records), then restart",
			f.rec.Topic, f.rec.Partition, f.rec.Offset, f.rec.Key, f.kind, oneLineErr(f.reason, 200), topic, size, pr.Err,
			f.rec.Topic, f.rec.Offset+1))
	}
	return errors.Join(errs...)
}

// maxDLQError bounds the dlq_error header, in bytes: a decoder's message
// may quote the whole offending input (an unknown member name of 600 KB),
// and the DLQ copy must stay within the record size the topic takes.
const maxDLQError = 4096

// oneLineErr is err's text cut to at most n bytes (at a character
// boundary), saying how long it was when cut.
func oneLineErr(err error, n int) string {
	s := err.Error()
	if len(s) > n {
		cut := n
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		s = s[:cut] + "… (" + strconv.Itoa(len(s)) + " bytes)"
	}
	return s
}

// DLQEntry is a DLQ record read back: where it came from and why it is there.
type DLQEntry struct {
	Offset          int64     `json:"offset"`    // offset in the DLQ topic
	Partition       int32     `json:"partition"` // partition in the DLQ topic
	SourceTopic     string    `json:"source_topic"`
	SourcePartition int32     `json:"source_partition"`
	SourceOffset    int64     `json:"source_offset"`
	Error           string    `json:"error"`
	Kind            string    `json:"kind"`
	Attempts        int       `json:"attempts"`
	FirstFailure    time.Time `json:"first_failure"`
	EventID         string    `json:"event_id,omitempty"`
	EventType       string    `json:"event_type,omitempty"` // from ce_type
	OrderID         string    `json:"order_id,omitempty"`   // the record key
	Group           string    `json:"group,omitempty"`
	Projection      string    `json:"projection,omitempty"`
}

// ParseDLQ reads the DLQ headers of r. It fails when the source topic,
// partition or offset header is missing or malformed (the record was not
// written by this runtime).
func ParseDLQ(r *kgo.Record) (DLQEntry, error) {
	e := DLQEntry{Offset: r.Offset, Partition: r.Partition, OrderID: string(r.Key), SourcePartition: -1, SourceOffset: -1}
	var errs []error
	for _, h := range r.Headers {
		v := string(h.Value)
		switch h.Key {
		case HeaderDLQError:
			e.Error = v
		case HeaderDLQKind:
			e.Kind = v
		case HeaderDLQSourceTopic:
			e.SourceTopic = v
		case HeaderDLQSourcePartition:
			p, err := strconv.ParseInt(v, 10, 32)
			if err != nil {
				errs = append(errs, fmt.Errorf("header %s=%q: %w", h.Key, v, err))
			}
			e.SourcePartition = int32(p)
		case HeaderDLQSourceOffset:
			o, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				errs = append(errs, fmt.Errorf("header %s=%q: %w", h.Key, v, err))
			}
			e.SourceOffset = o
		case HeaderDLQAttempts:
			e.Attempts, _ = strconv.Atoi(v)
		case HeaderDLQFirstFailure:
			e.FirstFailure, _ = time.Parse(time.RFC3339, v)
		case HeaderDLQEventID:
			e.EventID = v
		case HeaderDLQGroup:
			e.Group = v
		case HeaderDLQProjection:
			e.Projection = v
		case schemas.HeaderType:
			e.EventType = v
		case schemas.HeaderID:
			if e.EventID == "" {
				e.EventID = v
			}
		}
	}
	if e.SourceTopic == "" || e.SourcePartition < 0 || e.SourceOffset < 0 {
		errs = append(errs, fmt.Errorf("missing %s, %s or %s header", HeaderDLQSourceTopic, HeaderDLQSourcePartition, HeaderDLQSourceOffset))
	}
	if err := errors.Join(errs...); err != nil {
		return e, fmt.Errorf("dlq record at %s/%d offset %d: %w", r.Topic, r.Partition, r.Offset, err)
	}
	return e, nil
}
