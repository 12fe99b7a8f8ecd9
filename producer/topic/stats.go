package topic

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/orderstream/orderstream/schemas"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// maxExamples bounds the examples a failed check lists.
const maxExamples = 5

// PartitionStats is what one partition holds.
type PartitionStats struct {
	Partition   int32 `json:"partition"`
	StartOffset int64 `json:"start_offset"`
	EndOffset   int64 `json:"end_offset"` // high watermark at start of the read
	Records     int64 `json:"records"`
}

// CheckResult is one audit check.
type CheckResult struct {
	Name     string   `json:"name"`
	OK       bool     `json:"ok"`
	Detail   string   `json:"detail"`
	Examples []string `json:"examples,omitempty"`
}

// Stats is the content of the topic and the result of its checks.
type Stats struct {
	Topic        string           `json:"topic"`
	Partitions   []PartitionStats `json:"partitions"`
	Events       int64            `json:"events"`
	Orders       int              `json:"orders"`
	EventsByType map[string]int64 `json:"events_by_type"`
	// EventsBySchemaVersion counts records by their schema_version header
	// ("1", "2" …; "unknown" for records written before the relay set it):
	// whether v1 writers are still at work during a rolling upgrade.
	EventsBySchemaVersion map[string]int64 `json:"events_by_schema_version"`
	Checks                []CheckResult    `json:"checks"`
	ReadSeconds           float64          `json:"read_seconds"`

	eventIDs map[string]int // event id → occurrences
}

// OK reports whether every check passed.
func (s *Stats) OK() bool {
	for _, c := range s.Checks {
		if !c.OK {
			return false
		}
	}
	return true
}

// Duplicates returns how many records repeat an event id already seen.
func (s *Stats) Duplicates() int {
	n := 0
	for _, c := range s.eventIDs {
		n += c - 1
	}
	return n
}

// EventIDs returns how often each event id occurs in the topic.
func (s *Stats) EventIDs() map[string]int { return s.eventIDs }

type orderState struct {
	last   int64 // last aggregate_version seen in offset order
	broken bool
}

// ReadStats reads every record of topic from the earliest offset up to the
// high watermark of each partition at the start, using the brokers of cl
// (a fresh consumer is created; cl is used for admin requests). It checks:
//   - "versions contiguous": for every order (record key), the
//     aggregate_version headers in offset order are 1, 2, …, n;
//   - "no duplicate event ids": no ce_id header occurs twice.
//
// Records are not decoded beyond their key and headers, so 50k records read
// in well under a second on a local broker. opts reach Kafka as for
// ReadRange.
func ReadStats(ctx context.Context, cl *kgo.Client, seeds []string, topic string, opts ...kgo.Opt) (*Stats, error) {
	begin := time.Now()
	adm := kadm.NewClient(cl)
	if _, err := Check(ctx, adm, topic); err != nil {
		return nil, err
	}
	starts, err := adm.ListStartOffsets(ctx, topic)
	if err != nil {
		return nil, fmt.Errorf("list start offsets of %s: %w", topic, err)
	}
	ends, err := adm.ListEndOffsets(ctx, topic)
	if err != nil {
		return nil, fmt.Errorf("list end offsets of %s: %w", topic, err)
	}
	if err := errors.Join(starts.Error(), ends.Error()); err != nil {
		return nil, fmt.Errorf("offsets of %s: %w", topic, err)
	}
	s := &Stats{Topic: topic, EventsByType: map[string]int64{}, EventsBySchemaVersion: map[string]int64{}, eventIDs: map[string]int{}}
	startAt, endAt := map[int32]int64{}, map[int32]int64{}
	ends.Each(func(o kadm.ListedOffset) {
		st, _ := starts.Lookup(topic, o.Partition)
		s.Partitions = append(s.Partitions, PartitionStats{Partition: o.Partition, StartOffset: st.Offset, EndOffset: o.Offset})
		startAt[o.Partition], endAt[o.Partition] = st.Offset, o.Offset
	})
	sort.Slice(s.Partitions, func(i, j int) bool { return s.Partitions[i].Partition < s.Partitions[j].Partition })
	index := map[int32]int{}
	for i, p := range s.Partitions {
		index[p.Partition] = i
	}
	orders := map[string]*orderState{}
	var versionProblems, idProblems []string
	brokenOrders := 0
	err = ReadRange(ctx, seeds, topic, startAt, endAt, func(r *kgo.Record) {
		s.Partitions[index[r.Partition]].Records++
		s.Events++
		var id, typ, ver string
		schemaVersion := "unknown"
		for _, h := range r.Headers {
			switch h.Key {
			case schemas.HeaderID:
				id = string(h.Value)
			case schemas.HeaderType:
				typ = string(h.Value)
			case schemas.HeaderAggregateVersion:
				ver = string(h.Value)
			case schemas.HeaderSchemaVersion:
				schemaVersion = string(h.Value)
			}
		}
		s.EventsByType[typ]++
		s.EventsBySchemaVersion[schemaVersion]++
		s.eventIDs[id]++
		if s.eventIDs[id] == 2 && len(idProblems) < maxExamples {
			idProblems = append(idProblems, fmt.Sprintf("event %s again at partition %d offset %d", id, r.Partition, r.Offset))
		}
		key := string(r.Key)
		o := orders[key]
		if o == nil {
			o = &orderState{}
			orders[key] = o
		}
		v, err := strconv.ParseInt(ver, 10, 64)
		if err != nil || v != o.last+1 {
			if !o.broken {
				brokenOrders++
				o.broken = true
				if len(versionProblems) < maxExamples {
					versionProblems = append(versionProblems, fmt.Sprintf("order %s: version %q after %d at partition %d offset %d", key, ver, o.last, r.Partition, r.Offset))
				}
			}
		}
		if err == nil && v > o.last {
			o.last = v
		}
	}, opts...)
	if err != nil {
		return nil, err
	}
	s.Orders = len(orders)
	dups := s.Duplicates()
	s.Checks = append(s.Checks,
		CheckResult{Name: "versions contiguous", OK: brokenOrders == 0,
			Detail:   fmt.Sprintf("%d of %d orders have aggregate_version 1..n in offset order", len(orders)-brokenOrders, len(orders)),
			Examples: versionProblems},
		CheckResult{Name: "no duplicate event ids", OK: dups == 0,
			Detail:   fmt.Sprintf("%d distinct event ids, %d duplicate records", len(s.eventIDs), dups),
			Examples: idProblems},
	)
	s.ReadSeconds = time.Since(begin).Seconds()
	return s, nil
}

// CompareOutbox adds the check "one Kafka event per outbox event": the
// topic holds exactly as many events as the outbox at pool, and every outbox
// event_id occurs exactly once. Rows already purged from the outbox cannot
// be compared; run it before the purge retention elapses (or with the purge
// disabled).
func (s *Stats) CompareOutbox(ctx context.Context, pool *pgxpool.Pool) error {
	rows, err := pool.Query(ctx, `SELECT event_id::text FROM outbox`)
	if err != nil {
		return fmt.Errorf("read outbox event ids: %w", err)
	}
	defer rows.Close()
	var n int64
	var missing, repeated int
	var examples []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return fmt.Errorf("read outbox event ids: %w", err)
		}
		n++
		switch c := s.eventIDs[id]; {
		case c == 0:
			missing++
			if len(examples) < maxExamples {
				examples = append(examples, "outbox event "+id+" is not in the topic")
			}
		case c > 1:
			repeated++
			if len(examples) < maxExamples {
				examples = append(examples, fmt.Sprintf("outbox event %s is in the topic %d times", id, c))
			}
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("read outbox event ids: %w", err)
	}
	ok := n == s.Events && missing == 0 && repeated == 0
	s.Checks = append(s.Checks, CheckResult{Name: "one Kafka event per outbox event", OK: ok,
		Detail: fmt.Sprintf("outbox %d events, topic %d events; %d outbox events missing, %d more than once",
			n, s.Events, missing, repeated),
		Examples: examples})
	return nil
}
