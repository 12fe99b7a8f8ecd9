package consumers

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// rec is a record of partition p at offset o with a value of size bytes.
func rec(p int32, o int64, size int) *kgo.Record {
	return &kgo.Record{Topic: "orders", Partition: p, Offset: o, Value: make([]byte, size)}
}

// positions renders recs as "p/o" in order.
func positions(recs []*kgo.Record) string {
	out := make([]string, len(recs))
	for i, r := range recs {
		out[i] = fmt.Sprintf("%d/%d", r.Partition, r.Offset)
	}
	return strings.Join(out, " ")
}

func ownedAll(int32) bool { return true }

func TestBatchGather(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name               string
		maxRecords, maxB   int
		polls              [][]*kgo.Record // gathered in turn
		owned              func(int32) bool
		wantBuf, wantAhead string
		wantBytes          int
	}{
		{name: "records of several partitions in poll order", maxRecords: 10, maxB: 100,
			polls:   [][]*kgo.Record{{rec(0, 5, 1), rec(1, 7, 1)}, {rec(0, 6, 1), rec(2, 0, 1)}},
			wantBuf: "0/5 1/7 0/6 2/0", wantBytes: 4},
		{name: "past BatchMaxRecords goes ahead", maxRecords: 2, maxB: 100,
			polls:   [][]*kgo.Record{{rec(0, 1, 1), rec(0, 2, 1), rec(0, 3, 1)}},
			wantBuf: "0/1 0/2", wantAhead: "0/3", wantBytes: 2},
		{name: "past BatchMaxBytes goes ahead", maxRecords: 10, maxB: 10,
			polls:   [][]*kgo.Record{{rec(0, 1, 6), rec(1, 1, 4), rec(0, 2, 1)}},
			wantBuf: "0/1 1/1", wantAhead: "0/2", wantBytes: 10},
		{name: "a first record larger than BatchMaxBytes is a batch of its own", maxRecords: 10, maxB: 10,
			polls:   [][]*kgo.Record{{rec(0, 1, 50), rec(0, 2, 1)}},
			wantBuf: "0/1", wantAhead: "0/2", wantBytes: 50},
		{name: "nothing overtakes a record held ahead, even one that would fit", maxRecords: 10, maxB: 10,
			polls:   [][]*kgo.Record{{rec(0, 1, 8), rec(1, 1, 5), rec(2, 1, 1)}},
			wantBuf: "0/1", wantAhead: "1/1 2/1", wantBytes: 8},
		{name: "records of partitions revoked since the fetch are left out", maxRecords: 10, maxB: 100,
			polls:   [][]*kgo.Record{{rec(0, 1, 1), rec(1, 1, 1), rec(0, 2, 1)}},
			owned:   func(p int32) bool { return p != 1 },
			wantBuf: "0/1 0/2", wantBytes: 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := batch{maxRecords: tt.maxRecords, maxBytes: tt.maxB, maxWait: time.Second}
			owned := tt.owned
			if owned == nil {
				owned = ownedAll
			}
			for _, p := range tt.polls {
				b.gather(p, owned)
			}
			if got := positions(b.buf.recs); got != tt.wantBuf {
				t.Errorf("batch %q, want %q", got, tt.wantBuf)
			}
			if got := positions(b.ahead.recs); got != tt.wantAhead {
				t.Errorf("ahead %q, want %q", got, tt.wantAhead)
			}
			if b.buf.bytes != tt.wantBytes {
				t.Errorf("batch bytes %d, want %d", b.buf.bytes, tt.wantBytes)
			}
		})
	}
}

func TestBatchDue(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		give    []*kgo.Record
		after   time.Duration // since the first record was gathered
		want    bool
		wantDue time.Duration // deadline - first record; -1: no deadline
	}{
		{name: "empty is never due", after: time.Hour, want: false, wantDue: -1},
		{name: "below every bound", give: []*kgo.Record{rec(0, 1, 1)}, after: 499 * time.Millisecond, want: false, wantDue: 500 * time.Millisecond},
		{name: "BatchMaxWait reached", give: []*kgo.Record{rec(0, 1, 1)}, after: 500 * time.Millisecond, want: true, wantDue: 500 * time.Millisecond},
		{name: "BatchMaxRecords reached", give: []*kgo.Record{rec(0, 1, 1), rec(0, 2, 1), rec(1, 1, 1)}, want: true, wantDue: 500 * time.Millisecond},
		{name: "BatchMaxBytes reached", give: []*kgo.Record{rec(0, 1, 60), rec(1, 1, 40)}, want: true, wantDue: 500 * time.Millisecond},
		{name: "records waiting ahead", give: []*kgo.Record{rec(0, 1, 90), rec(0, 2, 20)}, want: true, wantDue: 500 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			// The caught-up rule off (TestBatchCaughtUp covers it).
			b := batch{maxRecords: 3, maxBytes: 100, maxWait: 500 * time.Millisecond, minInterval: 500 * time.Millisecond}
			b.gather(tt.give, ownedAll)
			if got := b.due(b.buf.started.Add(tt.after)); got != tt.want {
				t.Errorf("due = %v, want %v", got, tt.want)
			}
			at, ok := b.deadline()
			if tt.wantDue < 0 {
				if ok {
					t.Errorf("deadline %v for an empty batch", at)
				}
			} else if !ok || at.Sub(b.buf.started) != tt.wantDue {
				t.Errorf("deadline %v after the first record (set: %v), want %v", at.Sub(b.buf.started), ok, tt.wantDue)
			}
		})
	}
}

// TestBatchCaughtUp: the caught-up rule writes a batch once a poll came
// back short and BatchMinInterval passed since the last write started; a
// full poll, or a write too recent, leaves it to BatchMaxWait; the poll
// deadline is the earlier of the two; BatchMinInterval ≥ BatchMaxWait
// turns the rule off.
func TestBatchCaughtUp(t *testing.T) {
	t.Parallel()
	const maxWait, interval = 500 * time.Millisecond, 100 * time.Millisecond
	tests := []struct {
		name        string
		minInterval time.Duration
		got, asked  int           // the last poll
		lastWrite   time.Duration // before the first record; -1: no write yet
		after       time.Duration // since the first record
		want        bool
		wantDue     time.Duration // deadline - first record
	}{
		{name: "caught up, no write yet: at once", minInterval: interval, got: 1, asked: 3, lastWrite: -1, want: true, wantDue: 0},
		{name: "caught up, last write long ago: at once", minInterval: interval, got: 1, asked: 3, lastWrite: time.Second, want: true, wantDue: 0},
		{name: "caught up, last write too recent: waits for the interval", minInterval: interval, got: 1, asked: 3, lastWrite: 40 * time.Millisecond,
			after: 59 * time.Millisecond, want: false, wantDue: 60 * time.Millisecond},
		{name: "caught up, interval reached", minInterval: interval, got: 1, asked: 3, lastWrite: 40 * time.Millisecond,
			after: 60 * time.Millisecond, want: true, wantDue: 60 * time.Millisecond},
		{name: "poll came back full: not caught up, waits BatchMaxWait", minInterval: interval, got: 2, asked: 2, lastWrite: time.Second,
			after: 499 * time.Millisecond, want: false, wantDue: 0},
		{name: "rule off (interval = BatchMaxWait)", minInterval: maxWait, got: 1, asked: 3, lastWrite: time.Second,
			after: 499 * time.Millisecond, want: false, wantDue: maxWait},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := batch{maxRecords: 3, maxBytes: 100, maxWait: maxWait, minInterval: tt.minInterval}
			b.polled(tt.got, tt.asked)
			b.gather([]*kgo.Record{rec(0, 1, 1)}, ownedAll)
			if tt.lastWrite >= 0 {
				b.writing(b.buf.started.Add(-tt.lastWrite))
			}
			if got := b.due(b.buf.started.Add(tt.after)); got != tt.want {
				t.Errorf("due = %v, want %v", got, tt.want)
			}
			at, ok := b.deadline()
			if got := at.Sub(b.buf.started); !ok || (tt.wantDue > 0 && got != tt.wantDue) || (tt.wantDue == 0 && got > 0) {
				t.Errorf("deadline %v after the first record, want %v (0: at once or past)", got, tt.wantDue)
			}
		})
	}
}

func TestBatchPollSizeAndAheadRoom(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name          string
		buf, ahead    int // records of 10 bytes gathered into the batch, read ahead
		maxPoll       int
		wantPoll      int
		wantAheadRoom int
	}{
		{name: "empty: a poll of MaxPollRecords", maxPoll: 4, wantPoll: 4, wantAheadRoom: 5},
		{name: "room left in the batch caps the poll", buf: 3, maxPoll: 4, wantPoll: 2, wantAheadRoom: 5},
		{name: "a full batch still polls one", buf: 5, maxPoll: 4, wantPoll: 1, wantAheadRoom: 5},
		{name: "ahead below one batch", buf: 5, ahead: 2, maxPoll: 4, wantPoll: 1, wantAheadRoom: 3},
		{name: "ahead at BatchMaxBytes", buf: 5, ahead: 4, maxPoll: 4, wantPoll: 1, wantAheadRoom: 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := batch{maxRecords: 5, maxBytes: 40, maxWait: time.Second}
			for i := range tt.buf {
				b.buf.add(rec(0, int64(i), 8))
			}
			for i := range tt.ahead {
				b.readAhead(rec(0, int64(tt.buf+i), 10))
			}
			if got := b.pollSize(tt.maxPoll); got != tt.wantPoll {
				t.Errorf("pollSize = %d, want %d", got, tt.wantPoll)
			}
			if got := b.aheadRoom(); got != tt.wantAheadRoom {
				t.Errorf("aheadRoom = %d, want %d", got, tt.wantAheadRoom)
			}
		})
	}
}

// TestBatchDropAndPromote: revoking a partition drops its records from the
// batch and from what was read ahead, and tells a waiting flush (gen); a
// written batch is replaced by what was read ahead, within the bounds.
func TestBatchDropAndPromote(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name               string
		buf, ahead         []*kgo.Record
		drop               []int32
		done               bool
		wantBuf, wantAhead string
		wantGen            uint64
		wantDecKept        bool
	}{
		{name: "revoking a partition drops its records everywhere", buf: []*kgo.Record{rec(0, 1, 1), rec(1, 1, 1), rec(0, 2, 1)},
			ahead: []*kgo.Record{rec(1, 2, 1), rec(2, 1, 1)}, drop: []int32{1},
			wantBuf: "0/1 0/2", wantAhead: "2/1", wantGen: 1},
		{name: "revoking no partition changes nothing", buf: []*kgo.Record{rec(0, 1, 1)}, drop: nil,
			wantBuf: "0/1", wantDecKept: true},
		{name: "revoking a partition without records keeps the decoded batch", buf: []*kgo.Record{rec(0, 1, 1)}, drop: []int32{3},
			wantBuf: "0/1", wantGen: 1, wantDecKept: true},
		{name: "revoking the batch's partitions promotes on the next gather", buf: []*kgo.Record{rec(0, 1, 1)},
			ahead: []*kgo.Record{rec(2, 1, 1)}, drop: []int32{0},
			wantBuf: "2/1", wantGen: 1},
		{name: "done promotes what was read ahead, up to BatchMaxRecords", buf: []*kgo.Record{rec(0, 1, 1)},
			ahead: []*kgo.Record{rec(0, 2, 1), rec(1, 1, 1), rec(0, 3, 1), rec(0, 4, 1)}, done: true,
			wantBuf: "0/2 1/1 0/3", wantAhead: "0/4"},
		{name: "done with nothing ahead leaves the batch empty", buf: []*kgo.Record{rec(0, 1, 1)}, done: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := batch{maxRecords: 3, maxBytes: 100, maxWait: time.Second}
			for _, r := range tt.buf {
				b.buf.add(r)
			}
			b.buf.dec = &decoded{n: len(tt.buf)}
			for _, r := range tt.ahead {
				b.readAhead(r)
			}
			b.drop(tt.drop)
			if tt.done {
				b.done()
			}
			b.gather(nil, ownedAll)
			if got := positions(b.buf.recs); got != tt.wantBuf {
				t.Errorf("batch %q, want %q", got, tt.wantBuf)
			}
			if got := positions(b.ahead.recs); got != tt.wantAhead {
				t.Errorf("ahead %q, want %q", got, tt.wantAhead)
			}
			if b.gen != tt.wantGen {
				t.Errorf("gen %d, want %d", b.gen, tt.wantGen)
			}
			if kept := b.buf.dec != nil; kept != tt.wantDecKept {
				t.Errorf("decoded form kept: %v, want %v", kept, tt.wantDecKept)
			}
			if sum := func(p pending) (n int) {
				for _, r := range p.recs {
					n += len(r.Value)
				}
				return n
			}; b.buf.bytes != sum(b.buf) || b.ahead.bytes != sum(b.ahead) {
				t.Errorf("bytes %d/%d, want %d/%d", b.buf.bytes, b.ahead.bytes, sum(b.buf), sum(b.ahead))
			}
		})
	}
}

// TestBatchCommitRule: after a write every partition commits past its last
// record of the batch (dead-lettered ones included); a strict run that
// stops commits, per partition, only what precedes its first failure.
func TestBatchCommitRule(t *testing.T) {
	t.Parallel()
	recs := []*kgo.Record{rec(0, 4, 1), rec(1, 9, 1), rec(0, 5, 1), rec(2, 3, 1), rec(1, 10, 1), rec(0, 6, 1)}
	fail := func(r *kgo.Record) failure { return failure{rec: r} }
	tests := []struct {
		name       string
		bad        []failure
		wantStrict string
	}{
		{name: "no failure commits everything", wantStrict: "0/4 1/9 0/5 2/3 1/10 0/6"},
		{name: "a failure keeps back its partition from it on", bad: []failure{fail(recs[2])}, wantStrict: "0/4 1/9 2/3 1/10"},
		{name: "the lowest failure of a partition counts", bad: []failure{fail(recs[5]), fail(recs[2])}, wantStrict: "0/4 1/9 2/3 1/10"},
		{name: "failures in several partitions", bad: []failure{fail(recs[1]), fail(recs[3])}, wantStrict: "0/4 0/5 0/6"},
		{name: "a first record failing commits nothing of its partition", bad: []failure{fail(recs[0]), fail(recs[1]), fail(recs[3])}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := positions(beforeFailures(recs, tt.bad)); got != tt.wantStrict {
				t.Errorf("strict commit covers %q, want %q", got, tt.wantStrict)
			}
		})
	}

	last := lastPerPartition(recs)
	var got []string
	for p, r := range last {
		got = append(got, fmt.Sprintf("%d/%d", p, r.Offset))
	}
	slices.Sort(got)
	if want := []string{"0/6", "1/10", "2/3"}; !slices.Equal(got, want) {
		t.Errorf("commit after a write %v, want %v", got, want)
	}
}
