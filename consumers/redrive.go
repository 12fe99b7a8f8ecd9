package consumers

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"

	"github.com/orderstream/orderstream/schemas"
	"github.com/twmb/franz-go/pkg/kgo"
)

// RedriveConfig configures Redrive. Brokers, DLQTopic and Group are
// required.
type RedriveConfig struct {
	// Brokers are the Kafka seed brokers, host:port.
	Brokers []string
	// DLQTopic is the dead-letter topic ("<topic>.dlq" by default).
	DLQTopic string
	// Group is the consumer group whose dead letters are re-driven; the
	// dead letters of other groups are left alone.
	Group string
	// DryRun lists what would be applied; nothing is written.
	DryRun bool
	// ClientOpts are added to the Kafka clients: how to reach Kafka (TLS,
	// SASL: internal/connect.Kafka.ClientOpts) and test settings.
	ClientOpts []kgo.Opt
	// Upcasters turn each dead letter into the version the sink reads, as
	// the group's consumers do (default: schemas.NewUpcasters()). A record
	// dead-lettered as newer than its consumer knew is applied here once
	// this build reads its version.
	Upcasters *schemas.Upcasters
}

// Validate reports every problem of c at once.
func (c RedriveConfig) Validate() error {
	var errs []error
	if len(c.Brokers) == 0 {
		errs = append(errs, errors.New("brokers: at least one seed broker is required"))
	}
	if c.DLQTopic == "" {
		errs = append(errs, errors.New("dlq topic: required"))
	}
	if c.Group == "" {
		errs = append(errs, errors.New("group: required (the consumer group whose dead letters are re-driven)"))
	}
	return errors.Join(errs...)
}

// RedriveResult is what a re-drive of one group did.
type RedriveResult struct {
	Group string `json:"group"`
	// Applied are the dead letters written to the sink, in the order
	// written (per order: the dead letter, then its parked records).
	Applied []DLQEntry `json:"applied"`
	// Stuck are the dead letters that failed again (Error: this attempt's
	// reason), one per order; they and the records behind them stay
	// dead-lettered and their orders parked.
	Stuck []DLQEntry `json:"stuck"`
	// Waiting counts the records left behind a stuck one.
	Waiting int `json:"waiting"`
}

// Redrive applies the dead letters of cfg.Group that were not re-driven yet
// directly through sink (the group's own read model), order by order in
// DLQ order: an order's dead letter first, then the records parked behind
// it. Nothing is written to the events topic, and the other groups' dead
// letters are not touched: a record both groups dead-lettered is applied
// once to each read model, by a re-drive of each group.
//
// After each round (the next pending record of every order) it appends to
// the DLQ, per order, a KindRedriven marker naming the last DLQ offset
// applied, once the sink acknowledged the write; the group's consumers then
// stop parking that order, and a later re-drive skips what the markers
// cover. So a re-drive is idempotent and survives restarts; one interrupted
// between a write and its marker applies those records again, harmlessly
// (the sinks are idempotent).
//
// A record that fails again (an envelope that does not decode, a
// *RejectedError) stays dead-lettered with the records behind it; the
// re-drive goes on with the other orders. A transient sink error (or the
// markers not acked) ends the re-drive with that error; rerun it.
func Redrive(ctx context.Context, cfg RedriveConfig, sink Sink, log *slog.Logger) (RedriveResult, error) {
	res := RedriveResult{Group: cfg.Group, Applied: []DLQEntry{}, Stuck: []DLQEntry{}}
	up := cfg.Upcasters
	if up == nil {
		up = schemas.NewUpcasters()
	}
	if err := cfg.Validate(); err != nil {
		return res, fmt.Errorf("re-drive config: %w", err)
	}
	if log == nil {
		log = slog.Default()
	}
	st, err := ReadDLQState(ctx, cfg.Brokers, cfg.DLQTopic, cfg.Group, true, cfg.ClientOpts...)
	if err != nil {
		return res, err
	}
	orders := st.Pending(cfg.Group)
	if cfg.DryRun {
		for _, po := range orders {
			for _, r := range po.Records {
				e, _ := ParseDLQ(r)
				res.Applied = append(res.Applied, e)
			}
		}
		return res, nil
	}
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(cfg.Brokers...), kgo.RecordPartitioner(kgo.ManualPartitioner())}, cfg.ClientOpts...)...)
	if err != nil {
		return res, fmt.Errorf("kafka client: %w", err)
	}
	defer cl.Close()

	next := make([]int, len(orders)) // index of each order's next record; -1 when stuck
	for round := 0; ; round++ {
		var (
			batch   []Record
			entries []DLQEntry
			from    []int // order of each batch record
		)
		for i, po := range orders {
			if next[i] < 0 || next[i] >= len(po.Records) {
				continue
			}
			r := po.Records[next[i]]
			e, perr := ParseDLQ(r)
			env, derr := parseEvent(up, r.Key, r.Value)
			if err := errors.Join(perr, derr); err != nil {
				e.Error = err.Error()
				res.Stuck = append(res.Stuck, e)
				res.Waiting += len(po.Records) - next[i] - 1
				next[i] = -1
				continue
			}
			batch = append(batch, Record{Topic: e.SourceTopic, Partition: e.SourcePartition, Offset: e.SourceOffset,
				Key: r.Key, Timestamp: r.Timestamp, Event: env})
			entries = append(entries, e)
			from = append(from, i)
		}
		if len(batch) == 0 {
			return res, nil
		}
		var rejected map[int]error
		if err := sink.Write(ctx, batch); err != nil {
			var rej *RejectedError
			if !errors.As(err, &rej) {
				return res, fmt.Errorf("re-drive of group %s, round %d: write %d record(s): %w (nothing of this round is marked re-driven; rerun)",
					cfg.Group, round+1, len(batch), err)
			}
			rejected = rej.Rejected
		}
		var markers []*kgo.Record
		for j, e := range entries {
			i := from[j]
			po := orders[i]
			if reason, ok := rejected[j]; ok {
				e.Error = reason.Error()
				res.Stuck = append(res.Stuck, e)
				res.Waiting += len(po.Records) - next[i] - 1
				next[i] = -1
				continue
			}
			res.Applied = append(res.Applied, e)
			markers = append(markers, redriveMarker(cfg, po, po.Records[next[i]].Offset))
			next[i]++
		}
		if len(markers) > 0 {
			if err := cl.ProduceSync(ctx, markers...).FirstErr(); err != nil {
				return res, fmt.Errorf("re-drive of group %s: mark %d order(s) re-driven in %s (their records were applied; a rerun applies them again, harmlessly): %w",
					cfg.Group, len(markers), cfg.DLQTopic, err)
			}
		}
		log.Info("re-drive round done", "group", cfg.Group, "round", round+1, "applied", len(markers), "stuck", len(res.Stuck))
	}
}

// redriveMarker says that the dead letters of po up to DLQ offset through
// were applied.
func redriveMarker(cfg RedriveConfig, po PendingOrder, through int64) *kgo.Record {
	return &kgo.Record{Topic: cfg.DLQTopic, Partition: po.Partition, Key: []byte(po.Key), Headers: []kgo.RecordHeader{
		{Key: HeaderDLQKind, Value: []byte(KindRedriven)},
		{Key: HeaderDLQGroup, Value: []byte(cfg.Group)},
		{Key: HeaderDLQRedrivenThrough, Value: []byte(strconv.FormatInt(through, 10))},
	}}
}
