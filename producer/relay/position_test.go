package relay

import (
	"testing"
	"time"

	"github.com/jackc/pglogrepl"
)

func TestPositionTextRoundTrip(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		give Position
		want string
	}{
		{name: "wal", give: Position{Mode: ModeWAL, Major: 1<<32 | 0xA2B3C4D, Minor: 17}, want: "1/A2B3C4D/17"},
		{name: "wal backfill", give: Position{Mode: ModeWAL, Major: 0, Minor: 52001}, want: "0/0/52001"},
		{name: "poll", give: Position{Mode: ModePoll, Major: 7431, Minor: 52001}, want: "7431/52001"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := tt.give.String(); got != tt.want {
				t.Fatalf("String() = %q, want %q", got, tt.want)
			}
			back, err := ParsePosition(tt.want)
			if err != nil {
				t.Fatal(err)
			}
			if back != tt.give {
				t.Fatalf("ParsePosition(%q) = %+v, want %+v", tt.want, back, tt.give)
			}
		})
	}
}

func TestParsePositionErrors(t *testing.T) {
	t.Parallel()
	for _, give := range []string{"", "12", "x/1", "1/x", "0/ZZ/1", "0/1/x", "1/2/3/4"} {
		if _, err := ParsePosition(give); err == nil {
			t.Errorf("ParsePosition(%q): want an error", give)
		}
	}
}

func TestPositionLess(t *testing.T) {
	t.Parallel()
	wal := func(lsn, idx uint64) Position { return Position{Mode: ModeWAL, Major: lsn, Minor: idx} }
	tests := []struct {
		name     string
		p, q     Position
		wantLess bool
		wantOK   bool
	}{
		{name: "earlier commit", p: wal(100, 9), q: wal(200, 1), wantLess: true, wantOK: true},
		{name: "same commit, lower index", p: wal(100, 1), q: wal(100, 2), wantLess: true, wantOK: true},
		{name: "equal", p: wal(100, 2), q: wal(100, 2), wantLess: false, wantOK: true},
		{name: "later", p: wal(300, 1), q: wal(100, 2), wantLess: false, wantOK: true},
		{name: "backfill before streamed", p: wal(0, 99999), q: wal(1, 1), wantLess: true, wantOK: true},
		// an index-only or LSN-only position would get these wrong (several rows per commit LSN)
		{name: "big index same lsn", p: wal(100, 20000), q: wal(100, 20001), wantLess: true, wantOK: true},
		{name: "modes differ", p: wal(1, 1), q: Position{Mode: ModePoll, Major: 5, Minor: 5}, wantOK: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			less, ok := tt.p.Less(tt.q)
			if less != tt.wantLess || ok != tt.wantOK {
				t.Fatalf("Less = %v, %v; want %v, %v", less, ok, tt.wantLess, tt.wantOK)
			}
		})
	}
}

func TestAlreadyPublished(t *testing.T) {
	t.Parallel()
	last := Position{Mode: ModeWAL, Major: 500, Minor: 3}
	tests := []struct {
		name    string
		give    Position
		present bool
		want    bool
	}{
		{name: "empty partition", give: Position{Mode: ModeWAL, Major: 1, Minor: 1}, present: false, want: false},
		{name: "before last", give: Position{Mode: ModeWAL, Major: 400, Minor: 7}, present: true, want: true},
		{name: "same tx, earlier row", give: Position{Mode: ModeWAL, Major: 500, Minor: 2}, present: true, want: true},
		{name: "the last itself", give: last, present: true, want: true},
		{name: "same tx, later row", give: Position{Mode: ModeWAL, Major: 500, Minor: 4}, present: true, want: false},
		{name: "later tx", give: Position{Mode: ModeWAL, Major: 600, Minor: 1}, present: true, want: false},
		{name: "other mode is never skipped", give: Position{Mode: ModePoll, Major: 1, Minor: 1}, present: true, want: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := alreadyPublished(tt.give, last, tt.present); got != tt.want {
				t.Fatalf("alreadyPublished(%s) = %v, want %v", tt.give, got, tt.want)
			}
		})
	}
}

// op is one step of a tracker scenario.
type op struct {
	kind string // begin, add, ack, commit
	tx   int    // index of the transaction (order of begin)
	lsn  pglogrepl.LSN
}

func TestTrackerConfirmsOnlyFullyAckedPrefix(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		give []op
		want pglogrepl.LSN
	}{
		{name: "nothing", give: nil, want: 10},
		{name: "begun, not committed", give: []op{{kind: "begin", tx: 0, lsn: 100}, {kind: "add", tx: 0}, {kind: "ack", tx: 0}}, want: 10},
		{name: "committed, event in flight", give: []op{{kind: "begin", tx: 0, lsn: 100}, {kind: "add", tx: 0}, {kind: "commit", tx: 0, lsn: 110}}, want: 10},
		{name: "committed and acked", give: []op{{kind: "begin", tx: 0, lsn: 100}, {kind: "add", tx: 0}, {kind: "commit", tx: 0, lsn: 110}, {kind: "ack", tx: 0}}, want: 110},
		{name: "empty tx (heartbeat) confirms at commit", give: []op{{kind: "begin", tx: 0, lsn: 100}, {kind: "commit", tx: 0, lsn: 120}}, want: 120},
		{name: "heartbeat behind an event in flight does not confirm", give: []op{
			{kind: "begin", tx: 0, lsn: 100}, {kind: "add", tx: 0}, {kind: "commit", tx: 0, lsn: 110},
			{kind: "begin", tx: 1, lsn: 200}, {kind: "commit", tx: 1, lsn: 210},
		}, want: 10},
		{name: "later tx acked first waits for the earlier", give: []op{
			{kind: "begin", tx: 0, lsn: 100}, {kind: "add", tx: 0}, {kind: "commit", tx: 0, lsn: 110},
			{kind: "begin", tx: 1, lsn: 200}, {kind: "add", tx: 1}, {kind: "commit", tx: 1, lsn: 210},
			{kind: "ack", tx: 1},
		}, want: 10},
		{name: "then the earlier acks: both confirm", give: []op{
			{kind: "begin", tx: 0, lsn: 100}, {kind: "add", tx: 0}, {kind: "commit", tx: 0, lsn: 110},
			{kind: "begin", tx: 1, lsn: 200}, {kind: "add", tx: 1}, {kind: "commit", tx: 1, lsn: 210},
			{kind: "ack", tx: 1}, {kind: "ack", tx: 0},
		}, want: 210},
		{name: "partially acked tx stops the prefix", give: []op{
			{kind: "begin", tx: 0, lsn: 100}, {kind: "add", tx: 0}, {kind: "commit", tx: 0, lsn: 110}, {kind: "ack", tx: 0},
			{kind: "begin", tx: 1, lsn: 200}, {kind: "add", tx: 1}, {kind: "add", tx: 1}, {kind: "commit", tx: 1, lsn: 210}, {kind: "ack", tx: 1},
			{kind: "begin", tx: 2, lsn: 300}, {kind: "commit", tx: 2, lsn: 310},
		}, want: 110},
		{name: "all acked before commit, confirms at commit", give: []op{
			{kind: "begin", tx: 0, lsn: 100}, {kind: "add", tx: 0}, {kind: "add", tx: 0}, {kind: "ack", tx: 0}, {kind: "ack", tx: 0},
			{kind: "commit", tx: 0, lsn: 110},
		}, want: 110},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tr := newTracker(10, time.Unix(0, 0))
			var txs []*txn
			for _, o := range tt.give {
				switch o.kind {
				case "begin":
					txs = append(txs, tr.begin(o.lsn, time.Unix(int64(o.lsn), 0)))
				case "add":
					tr.add(txs[o.tx])
				case "ack":
					tr.ack(txs[o.tx])
				case "commit":
					tr.commit(txs[o.tx], o.lsn)
				}
			}
			if got, _ := tr.position(); got != tt.want {
				t.Fatalf("confirmable = %s, want %s", got, tt.want)
			}
		})
	}
}

func TestTrackerInFlightAndLagClock(t *testing.T) {
	t.Parallel()
	tr := newTracker(10, time.Unix(5, 0))
	if got := tr.oldest(); !got.Equal(time.Unix(5, 0)) {
		t.Fatalf("oldest with nothing open = %v, want the last confirmed commit time", got)
	}
	a := tr.begin(100, time.Unix(100, 0))
	tr.add(a)
	tr.add(a)
	if tr.events() != 2 {
		t.Fatalf("in flight = %d, want 2", tr.events())
	}
	if got := tr.oldest(); !got.Equal(time.Unix(100, 0)) {
		t.Fatalf("oldest = %v, want the open transaction's commit time", got)
	}
	tr.commit(a, 110)
	tr.ack(a)
	tr.ack(a)
	if tr.events() != 0 {
		t.Fatalf("in flight = %d, want 0", tr.events())
	}
	if lsn, at := tr.position(); lsn != 110 || !at.Equal(time.Unix(100, 0)) {
		t.Fatalf("position = %s at %v, want 0/6E at the commit time", lsn, at)
	}
}

func TestDecideSlot(t *testing.T) {
	t.Parallel()
	cp := func(state string, lsn pglogrepl.LSN) checkpoint {
		return checkpoint{found: true, state: state, confirmed: lsn}
	}
	slot := func(lsn pglogrepl.LSN) slotInfo { return slotInfo{exists: true, plugin: "pgoutput", confirmed: lsn} }
	tests := []struct {
		name    string
		cp      checkpoint
		slot    slotInfo
		reset   bool
		want    slotAction
		wantErr bool
	}{
		{name: "first run", want: slotCreate},
		{name: "resume", cp: cp(stateStreaming, 500), slot: slot(400), want: slotResume},
		{name: "resume at same position", cp: cp(stateStreaming, 500), slot: slot(500), want: slotResume},
		{name: "resume a backfill", cp: cp(stateBackfill, 500), slot: slot(500), want: slotResume},
		{name: "died while creating, slot made", cp: cp(stateCreating, 0), slot: slot(500), want: slotRecreate},
		{name: "died while creating, no slot", cp: cp(stateCreating, 0), want: slotRecreate},
		{name: "slot dropped", cp: cp(stateStreaming, 500), wantErr: true},
		{name: "slot recreated ahead", cp: cp(stateStreaming, 500), slot: slot(900), wantErr: true},
		{name: "unknown slot", slot: slot(900), wantErr: true},
		{name: "slot dropped, reset accepted", cp: cp(stateStreaming, 500), reset: true, want: slotRebase},
		{name: "slot ahead, reset accepted", cp: cp(stateStreaming, 500), slot: slot(900), reset: true, want: slotRebase},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := decideSlot(tt.cp, tt.slot, tt.reset)
			if tt.wantErr {
				if err == nil || !errorsIs(err, ErrSlotLost) {
					t.Fatalf("decideSlot: err = %v, want ErrSlotLost", err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("decideSlot = %v, %v; want %v", got, err, tt.want)
			}
		})
	}
}

func TestConfigValidateJoinsEveryProblem(t *testing.T) {
	t.Parallel()
	_, err := New(Config{Mode: "cdc", Slot: "Bad-Slot", MaxInFlight: -1})
	if err == nil {
		t.Fatal("want an error")
	}
	for _, want := range []string{"postgres URL", "Kafka brokers", "topic", `mode "cdc"`, `slot "Bad-Slot"`, "max in flight"} {
		if !contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
}
