package consumers

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Kinds of DLQ records (header dlq_kind). Decode, rejected and parked
// records are dead letters; a redriven record is a marker written by a
// re-drive, not a dead letter.
const (
	KindDecode   = "decode"   // not a valid event envelope
	KindRejected = "rejected" // rejected for good by the sink
	KindParked   = "parked"   // a valid event held behind an earlier dead letter of its order
	KindRedriven = "redriven" // marker: dead letters of one group and order re-driven (HeaderDLQRedrivenThrough)
)

// HeaderDLQRedrivenThrough, on a KindRedriven marker, is the DLQ offset
// (decimal) up to which, inclusive, the dead letters of the marker's group
// (HeaderDLQGroup) and key on the marker's DLQ partition were applied by a
// re-drive.
const HeaderDLQRedrivenThrough = "dlq_redriven_through"

// DLQState is what a DLQ topic says, read from its start: per consumer
// group, DLQ partition and order (record key), the dead letters and how far
// re-drives applied them. An order whose dead letters are not all re-driven
// is parked for that group: its later events go to the DLQ behind them.
//
// The zero value is not usable; NewDLQState makes one. Not safe for
// concurrent use.
type DLQState struct {
	group      string                       // "" keeps every group
	keep       bool                         // keep the dead-letter records (re-drive, rebuild)
	spans      map[orderKey]map[int32]*span // by DLQ partition
	unresolved int                          // spans with dead letters not re-driven
}

// orderKey is one group's view of one order (record key).
type orderKey struct {
	group string
	key   string
}

// span is one group's dead letters of one order on one DLQ partition.
type span struct {
	dead    int64         // highest DLQ offset of a dead letter; -1 none
	through int64         // highest DLQ offset re-driven (markers); -1 none
	pend    []letter      // dead letters not re-driven yet
	recs    []*kgo.Record // dead letters in offset order (when kept)
}

// letter is a dead letter's DLQ offset and its offset in the source topic.
type letter struct{ dlq, src int64 }

// NewDLQState returns an empty state that keeps the records of group only
// ("" for every group); keep retains the dead-letter records themselves
// (Pending needs them), else only their offsets.
func NewDLQState(group string, keep bool) *DLQState {
	return &DLQState{group: group, keep: keep, spans: map[orderKey]map[int32]*span{}}
}

// Add takes one record of the DLQ topic into account, in offset order per
// partition (records of other groups are ignored when the state is for one
// group).
func (s *DLQState) Add(r *kgo.Record) {
	var group, kind, through, src string
	for _, h := range r.Headers {
		switch h.Key {
		case HeaderDLQGroup:
			group = string(h.Value)
		case HeaderDLQKind:
			kind = string(h.Value)
		case HeaderDLQRedrivenThrough:
			through = string(h.Value)
		case HeaderDLQSourceOffset:
			src = string(h.Value)
		}
	}
	if s.group != "" && group != s.group {
		return
	}
	k := orderKey{group: group, key: string(r.Key)}
	parts := s.spans[k]
	if parts == nil {
		parts = map[int32]*span{}
		s.spans[k] = parts
	}
	sp := parts[r.Partition]
	if sp == nil {
		sp = &span{dead: -1, through: -1}
		parts[r.Partition] = sp
	}
	was := sp.dead > sp.through
	if kind == KindRedriven {
		if o, err := strconv.ParseInt(through, 10, 64); err == nil && o > sp.through {
			sp.through = o
			sp.pend = slices.DeleteFunc(sp.pend, func(l letter) bool { return l.dlq <= o })
		}
	} else if r.Offset > sp.dead { // else seen already (own produce, then read back)
		sp.dead = r.Offset
		if sp.dead > sp.through {
			o, err := strconv.ParseInt(src, 10, 64)
			if err != nil {
				o = -1 // not of this runtime: parks the whole order
			}
			sp.pend = append(sp.pend, letter{dlq: r.Offset, src: o})
		}
		if s.keep {
			sp.recs = append(sp.recs, r)
		}
	}
	switch now := sp.dead > sp.through; {
	case now && !was:
		s.unresolved++
	case was && !now:
		s.unresolved--
	}
}

// AnyParked reports whether some order of some group is parked.
func (s *DLQState) AnyParked() bool { return s.unresolved > 0 }

// Parked reports whether the record at offset of order key (a record key)
// of the source topic must wait for group: a dead letter of the order at or
// before offset was not re-driven yet. again reports that the record itself
// is such a dead letter (a redelivery). An empty key is never parked: such
// records belong to no order.
func (s *DLQState) Parked(group, key string, offset int64) (parked, again bool) {
	if key == "" {
		return false, false
	}
	for _, sp := range s.spans[orderKey{group: group, key: key}] {
		for _, l := range sp.pend {
			parked = parked || l.src <= offset
			again = again || l.src == offset
		}
	}
	return parked, again
}

// PendingOrder is one order's dead letters not re-driven yet, of one group,
// in the order they must be applied.
type PendingOrder struct {
	Group     string
	Partition int32 // DLQ partition
	Key       string
	Records   []*kgo.Record
}

// Pending returns, per order, the dead letters of group ("" for every
// group) that were not re-driven yet, sorted by group, DLQ partition and
// key. It needs a state made with keep.
func (s *DLQState) Pending(group string) []PendingOrder {
	var out []PendingOrder
	for k, parts := range s.spans {
		if group != "" && k.group != group {
			continue
		}
		for part, sp := range parts {
			if sp.dead <= sp.through {
				continue
			}
			po := PendingOrder{Group: k.group, Partition: part, Key: k.key}
			for _, r := range sp.recs {
				if r.Offset > sp.through {
					po.Records = append(po.Records, r)
				}
			}
			if len(po.Records) > 0 {
				out = append(out, po)
			}
		}
	}
	slices.SortFunc(out, func(a, b PendingOrder) int {
		return cmp.Or(cmp.Compare(a.Group, b.Group), cmp.Compare(a.Partition, b.Partition), cmp.Compare(a.Key, b.Key))
	})
	return out
}

// Redriven reports whether the dead letter at DLQ partition/offset of group
// and key was applied by a re-drive.
func (s *DLQState) Redriven(group string, part int32, key string, offset int64) bool {
	sp := s.spans[orderKey{group: group, key: key}][part]
	return sp != nil && offset <= sp.through
}

// IsDeadLetter reports whether r is a dead letter (not a re-drive marker).
func IsDeadLetter(r *kgo.Record) bool {
	for _, h := range r.Headers {
		if h.Key == HeaderDLQKind {
			return string(h.Value) != KindRedriven
		}
	}
	return true
}

// dlqReader keeps a DLQState current by reading a DLQ topic from its start,
// in the background, without a consumer group.
type dlqReader struct {
	cl    *kgo.Client
	adm   *kadm.Client
	topic string

	mu      sync.Mutex
	st      *DLQState
	pos     map[int32]int64 // next offset to read per partition
	changed chan struct{}   // closed (and replaced) whenever pos moves
	err     error           // fatal read error
	done    chan struct{}
}

// startDLQReader reads topic into st until ctx ends or close is called.
func startDLQReader(ctx context.Context, brokers []string, topic string, st *DLQState, opts ...kgo.Opt) (*dlqReader, error) {
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(brokers...), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart())}, opts...)...)
	if err != nil {
		return nil, fmt.Errorf("dlq %s: kafka client: %w", topic, err)
	}
	r := &dlqReader{cl: cl, adm: kadm.NewClient(cl), topic: topic, st: st, pos: map[int32]int64{},
		changed: make(chan struct{}), done: make(chan struct{})}
	go r.run(ctx)
	return r, nil
}

func (r *dlqReader) run(ctx context.Context) {
	defer close(r.done)
	for {
		fs := r.cl.PollFetches(ctx)
		if ctx.Err() != nil || fs.IsClientClosed() {
			return
		}
		var fatal error
		fs.EachError(func(t string, p int32, err error) {
			if errors.Is(err, kerr.OffsetOutOfRange) {
				fatal = fmt.Errorf("dlq %s partition %d: %w", t, p, err)
			}
		})
		r.mu.Lock()
		fs.EachRecord(func(rec *kgo.Record) {
			r.st.Add(rec)
			r.pos[rec.Partition] = max(r.pos[rec.Partition], rec.Offset+1)
		})
		if fatal != nil {
			r.err = fatal
		}
		close(r.changed)
		r.changed = make(chan struct{})
		r.mu.Unlock()
		if fatal != nil {
			return
		}
	}
}

// catchUp waits until everything the topic held when it was called has been
// read into the state.
func (r *dlqReader) catchUp(ctx context.Context) error {
	ends, err := r.adm.ListEndOffsets(ctx, r.topic)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		return fmt.Errorf("dlq %s: list end offsets: %w", r.topic, err)
	}
	for {
		r.mu.Lock()
		behind, ch, rerr := false, r.changed, r.err
		ends.Each(func(o kadm.ListedOffset) {
			if r.pos[o.Partition] < o.Offset {
				behind = true
			}
		})
		r.mu.Unlock()
		if rerr != nil {
			return rerr
		}
		if !behind {
			return nil
		}
		select {
		case <-ch:
		case <-r.done:
			if ctx.Err() == nil {
				return fmt.Errorf("dlq %s: reader stopped", r.topic)
			}
			return ctx.Err()
		case <-ctx.Done():
			return fmt.Errorf("dlq %s: catch up: %w", r.topic, ctx.Err())
		}
	}
}

// with calls fn with the state locked.
func (r *dlqReader) with(fn func(*DLQState)) {
	r.mu.Lock()
	defer r.mu.Unlock()
	fn(r.st)
}

// close stops the reader and waits for it.
func (r *dlqReader) close() {
	r.cl.Close()
	<-r.done
}

// ReadDLQState reads topic from its start to its end offsets as listed when
// called into a state of group ("" every group; keep as in NewDLQState). A
// missing topic yields an empty state. opts are added to the Kafka client.
func ReadDLQState(ctx context.Context, brokers []string, topic, group string, keep bool, opts ...kgo.Opt) (*DLQState, error) {
	st := NewDLQState(group, keep)
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(brokers...)}, opts...)...)
	if err != nil {
		return nil, fmt.Errorf("dlq %s: kafka client: %w", topic, err)
	}
	ts, err := kadm.NewClient(cl).ListTopics(ctx, topic)
	cl.Close()
	if err != nil {
		return nil, fmt.Errorf("dlq %s: list topics: %w", topic, err)
	}
	if t, ok := ts[topic]; !ok || t.Err != nil {
		return st, nil
	}
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	r, err := startDLQReader(rctx, brokers, topic, st, opts...)
	if err != nil {
		return nil, err
	}
	defer r.close()
	if err := r.catchUp(ctx); err != nil {
		return nil, err
	}
	return st, nil
}
