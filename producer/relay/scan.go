package relay

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// scanWindow is how many records the second step of the scan back reads;
// each later step reads twice as many as the one before, until the bound.
// The first step reads the last record alone (the usual case: the relay
// wrote it).
const scanWindow = 256

// scanTimeout bounds the whole scan of a topic.
const scanTimeout = 60 * time.Second

// partitionScan is the scan back of one partition.
type partitionScan struct {
	partition int32
	start     int64 // log start offset
	end       int64 // log end offset (the next offset to be written)
	lo        int64 // lowest offset read so far (end before the first step)
	found     bool
	pos       Position // relay position of the last record the relay wrote
	offset    int64    // its offset
}

func (s *partitionScan) scanned() int64 { return s.end - s.lo }

// lastPositions finds, for every partition of topic, the last record the
// relay wrote (the last one with a relay_position header) and returns its
// position, and the partition count. Records written by others (a DLQ
// re-drive, another producer) may follow it: the scan reads back from the
// partition's end, the last record first, then windows of 256, 512, …
// records, until it finds a relay record, reaches the log start, or has read
// bound records (offsets, control records included). Partitions without a
// relay record within the bound are absent from the map: their events are
// produced again (at least once wins over a guess), and a WARN says so.
// opts reach Kafka (the relay's WithKafkaOptions).
func lastPositions(ctx context.Context, cl *kgo.Client, topic string, bound int, log *slog.Logger, opts ...kgo.Opt) (map[int32]Position, int, error) {
	adm := kadm.NewClient(cl)
	ends, err := adm.ListEndOffsets(ctx, topic)
	if err != nil {
		return nil, 0, fmt.Errorf("list end offsets of %s: %w", topic, err)
	}
	starts, err := adm.ListStartOffsets(ctx, topic)
	if err != nil {
		return nil, 0, fmt.Errorf("list start offsets of %s: %w", topic, err)
	}
	if err := ends.Error(); err != nil {
		return nil, 0, fmt.Errorf("end offsets of %s: %w", topic, err)
	}
	partitions := 0
	var scans []*partitionScan
	ends.Each(func(o kadm.ListedOffset) {
		partitions++
		start, _ := starts.Lookup(topic, o.Partition)
		if o.Offset > start.Offset {
			scans = append(scans, &partitionScan{partition: o.Partition, start: start.Offset, end: o.Offset, lo: o.Offset})
		}
	})
	ctx, cancel := context.WithTimeout(ctx, scanTimeout)
	defer cancel()
	for window := int64(1); ; window = max(scanWindow, 2*window) {
		step := map[int32]*stepRange{}
		for _, s := range scans {
			if s.found || s.lo <= s.start || s.scanned() >= int64(bound) {
				continue
			}
			n := min(window, int64(bound)-s.scanned(), s.lo-s.start)
			step[s.partition] = &stepRange{scan: s, from: s.lo - n, to: s.lo}
		}
		if len(step) == 0 {
			break
		}
		if err := readStep(ctx, brokersOf(cl), topic, step, log, opts...); err != nil {
			return nil, 0, fmt.Errorf("read back the partitions of %s for the relay's last records: %w", topic, err)
		}
		for _, r := range step {
			r.scan.lo = r.from
			if r.found {
				r.scan.found, r.scan.pos, r.scan.offset = true, r.pos, r.offset
			}
		}
	}
	last := map[int32]Position{}
	for _, s := range scans {
		logScan(log, topic, s, bound)
		if s.found {
			last[s.partition] = s.pos
		}
	}
	return last, partitions, nil
}

// logScan says what the scan of one partition found: DEBUG when the last
// record is the relay's, INFO when records of others follow it or the
// partition holds none of the relay's, WARN when the bound stopped the scan.
func logScan(log *slog.Logger, topic string, s *partitionScan, bound int) {
	attrs := []any{"topic", topic, "partition", s.partition, "scanned", s.scanned()}
	switch {
	case s.found && s.offset == s.end-1:
		log.Debug("the last record of the partition is the relay's", append(attrs, "offset", s.offset, "position", s.pos.String())...)
	case s.found:
		log.Info("the relay's last record in the partition is followed by records it did not write (no relay_position header)",
			append(attrs, "offset", s.offset, "position", s.pos.String(), "records_after", s.end-1-s.offset)...)
	case s.lo <= s.start:
		log.Info("the partition holds no record written by the relay", attrs...)
	default:
		log.Warn("no record written by the relay within the last records of the partition (the scan bound): events of this "+
			"partition produced but not confirmed before the last stop will be produced again as duplicates; raise --duplicate-scan",
			append(attrs, "bound", bound, "end_offset", s.end)...)
	}
}

// stepRange is one partition's part of a scan step: offsets [from, to).
type stepRange struct {
	scan     *partitionScan
	from, to int64
	done     bool
	found    bool
	pos      Position
	offset   int64
}

// readStep reads the offset range of every partition of step and records
// the last relay record of each. Control records are kept so that a range
// ending in a transaction marker ends too; a record at or beyond to-1 ends
// a range (offsets may be missing).
func readStep(ctx context.Context, brokers []string, topic string, step map[int32]*stepRange, log *slog.Logger, opts ...kgo.Opt) error {
	from := map[int32]kgo.Offset{}
	for p, r := range step {
		from[p] = kgo.NewOffset().At(r.from)
	}
	cons, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(brokers...), kgo.KeepControlRecords(),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: from})}, opts...)...)
	if err != nil {
		return err
	}
	defer cons.Close()
	left := len(step)
	for left > 0 {
		fs := cons.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("%d of %d partitions unread: %w", left, len(step), err)
		}
		var ferr error
		fs.EachError(func(_ string, p int32, err error) {
			ferr = errors.Join(ferr, fmt.Errorf("partition %d: %w", p, err))
		})
		if ferr != nil {
			return ferr
		}
		fs.EachRecord(func(rec *kgo.Record) {
			r := step[rec.Partition]
			if r == nil || r.done {
				return
			}
			if rec.Offset < r.to && !rec.Attrs.IsControl() {
				if pos, ok := positionOf(rec, log); ok {
					r.found, r.pos, r.offset = true, pos, rec.Offset
				}
			}
			if rec.Offset >= r.to-1 {
				r.done = true
				left--
			}
		})
	}
	return nil
}

// positionOf returns the relay position of a record, ok false when it has
// none (not written by the relay) or an unreadable one (logged).
func positionOf(rec *kgo.Record, log *slog.Logger) (Position, bool) {
	for _, h := range rec.Headers {
		if h.Key != HeaderPosition {
			continue
		}
		pos, err := ParsePosition(string(h.Value))
		if err != nil {
			log.Warn("record with an unreadable relay position: taken as not written by the relay", "topic", rec.Topic,
				"partition", rec.Partition, "offset", rec.Offset, "error", err)
			return Position{}, false
		}
		return pos, true
	}
	return Position{}, false
}
