package status

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/orderstream/orderstream/consumers"
	"github.com/orderstream/orderstream/producer/relay"
	"github.com/orderstream/orderstream/producer/topic"
	"github.com/orderstream/orderstream/projections"
)

var (
	t0     = time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	limits = Limits{MaxLag: 100, MaxStaleness: 5 * time.Minute, MaxSlotLagBytes: 1 << 30}
)

// streaming is a healthy WAL relay that confirmed confirmed of current.
func streaming(confirmed, current string) *relay.Inspection {
	return &relay.Inspection{Slot: "s", Mode: relay.ModeWAL, CheckpointState: "streaming", ConfirmedLSN: confirmed,
		CurrentLSN: current, SlotExists: true, SlotActive: true, Unrelayed: -1}
}

// group is a group with one member whose committed offsets are committed
// on a topic whose end offsets are ends (partition i ↔ index i).
func group(name string, committed, ends []int64) consumers.Group {
	g := consumers.Group{Group: name, State: "Stable", Members: []consumers.Member{{ID: "m1"}}}
	for i, c := range committed {
		g.Partitions = append(g.Partitions, consumers.PartitionLag{Partition: int32(i), End: ends[i], Committed: c, Lag: ends[i] - c})
		g.Lag += ends[i] - c
	}
	return g
}

func projection(name string, committed, ends []int64) ProjectionObservation {
	return ProjectionObservation{Name: name, Group: "g-" + name,
		Generations: []projections.Generation{{Number: 1, State: projections.StateRetired}, {Number: 2, State: projections.StateServing}, {Number: 3, State: projections.StateBuilding}},
		GroupRead:   true, GroupState: group("g-"+name, committed, ends), TimesRead: true,
		Times: EventTimes{LastProcessed: t0.Add(-time.Minute)}}
}

// healthy is an observation of a healthy pipeline, caught up with ends
// 10, 20.
func healthy() Observation {
	ends := []int64{10, 20}
	return Observation{Time: t0, Topic: "orders", Relay: streaming("0/200", "0/200"),
		Starts: map[int32]int64{0: 0, 1: 0}, Ends: map[int32]int64{0: 10, 1: 20},
		Replay: &topic.Replayability{Info: topic.Info{RetentionMs: "-1", RetentionBytes: "-1", CleanupPolicy: "delete"}, Starts: map[int32]int64{0: 0, 1: 0}},
		DLQ:    DLQCounts{ByGroup: map[string]int64{}},
		Projections: []ProjectionObservation{
			projection("analytics", []int64{10, 20}, ends), projection("search", []int64{10, 20}, ends),
		}}
}

func TestEvaluate(t *testing.T) {
	t.Parallel()
	boom := errors.New("boom")
	tests := []struct {
		name         string
		give         func(o *Observation)
		wantHealthy  bool
		wantCaughtUp bool
		wantProblems []string
		check        func(t *testing.T, r Report)
	}{
		{name: "healthy and caught up", give: func(*Observation) {}, wantHealthy: true, wantCaughtUp: true,
			check: func(t *testing.T, r Report) {
				p := r.Projections[0]
				if r.Records != 30 || !r.Replayable || p.Serving != 2 || !slices.Equal(p.Building, []uint32{3}) || p.LastEvent != t0.Add(-time.Minute) {
					t.Errorf("records %d, replayable %v, serving %d, building %v, last event %s", r.Records, r.Replayable, p.Serving, p.Building, p.LastEvent)
				}
			}},
		{name: "relay not checked", give: func(o *Observation) { o.Relay = nil }, wantHealthy: true, wantCaughtUp: true,
			check: func(t *testing.T, r Report) {
				if r.Relay != nil {
					t.Error("a relay in the report")
				}
			}},
		{name: "relay unreadable", give: func(o *Observation) { o.Relay, o.RelayErr = nil, boom },
			wantProblems: []string{"relay: boom"}},
		{name: "relay never ran", give: func(o *Observation) {
			o.Relay = &relay.Inspection{Slot: "s", Mode: relay.ModeNotStarted, Unrelayed: -1}
		},
			wantProblems: []string{"relay: never ran with slot s (no checkpoint, no poll cursor): start `orderstream relay`"}},
		{name: "slot missing and checkpoint backfill", give: func(o *Observation) {
			o.Relay.SlotExists, o.Relay.SlotActive, o.Relay.CheckpointState = false, false, "backfill"
		},
			wantProblems: []string{
				"relay: replication slot s is missing (the relay stops with ErrSlotLost; see `orderstream relay --help`)",
				`relay: checkpoint of slot s is "backfill", not streaming`,
			}},
		{name: "slot inactive", give: func(o *Observation) { o.Relay.SlotActive = false },
			wantProblems: []string{"relay: replication slot s is inactive: no relay is streaming from it"}},
		{name: "slot pins too much WAL", give: func(o *Observation) { o.Relay.SlotLagBytes = 1<<30 + 1 },
			wantProblems: []string{"relay: slot s pins 1073741825 bytes of WAL (bound 1073741824)"}},
		{name: "slot pins exactly the bound", give: func(o *Observation) { o.Relay.SlotLagBytes = 1 << 30 }, wantHealthy: true, wantCaughtUp: true},
		{name: "poll relay lagging", give: func(o *Observation) { o.Relay = &relay.Inspection{Slot: "s", Mode: relay.ModePoll, Unrelayed: 101} },
			wantProblems: []string{"relay: 101 outbox rows not in Kafka (bound 100)"}},
		{name: "poll relay within bound", give: func(o *Observation) { o.Relay = &relay.Inspection{Slot: "s", Mode: relay.ModePoll, Unrelayed: 100} },
			wantHealthy: true, wantCaughtUp: true},
		{name: "WAL relay behind, no wait: still caught up", give: func(o *Observation) { o.Relay = streaming("0/100", "0/200") },
			wantHealthy: true, wantCaughtUp: true},
		{name: "topic offsets unreadable", give: func(o *Observation) {
			o.Starts, o.Ends, o.OffsetsErr, o.Replay = nil, nil, boom, nil
			for i := range o.Projections {
				o.Projections[i].GroupRead, o.Projections[i].TimesRead = false, false
			}
		},
			wantProblems: []string{"kafka: boom"},
			check: func(t *testing.T, r Report) {
				if g := r.Projections[0].Group; g.Group != "g-analytics" || g.State != "unknown" {
					t.Errorf("group %+v, want g-analytics in state unknown", g)
				}
			}},
		{name: "not replayable", give: func(o *Observation) { o.Replay.Starts[1] = 5 },
			wantProblems: []string{"topic orders cannot be replayed from offset zero (a rebuild would miss events): partition 1: log start offset 5, want 0 (offsets 0..4 were deleted)"},
			check: func(t *testing.T, r Report) {
				if r.Replayable {
					t.Error("replayable")
				}
			}},
		{name: "replayability unreadable", give: func(o *Observation) { o.Replay, o.ReplayErr = nil, boom },
			wantProblems: []string{"kafka: boom"}},
		{name: "under-replicated is reported, not a problem", give: func(o *Observation) {
			o.Replay.Info.Brokers, o.Replay.Info.Replicas, o.Replay.Info.MinInsync = 3, 3, "1"
		},
			wantHealthy: true, wantCaughtUp: true,
			check: func(t *testing.T, r Report) {
				if len(r.Replication) != 1 || !strings.HasPrefix(r.Replication[0], "min.insync.replicas=1 with 3 replicas") {
					t.Errorf("replication problems %q, want min.insync.replicas=1", r.Replication)
				}
			}},
		{name: "replicated: no replication problem", give: func(o *Observation) {
			o.Replay.Info.Brokers, o.Replay.Info.Replicas, o.Replay.Info.MinInsync = 3, 3, "2"
		},
			wantHealthy: true, wantCaughtUp: true,
			check: func(t *testing.T, r Report) {
				if len(r.Replication) != 0 {
					t.Errorf("replication problems %q, want none", r.Replication)
				}
			}},
		{name: "DLQ unreadable", give: func(o *Observation) { o.DLQErr = boom }, wantProblems: []string{"dlq: boom"}},
		{name: "DLQ pending is reported, not a problem", give: func(o *Observation) { o.DLQ = DLQCounts{Total: 3, ByGroup: map[string]int64{"g-search": 3}} },
			wantHealthy: true, wantCaughtUp: true,
			check: func(t *testing.T, r Report) {
				if r.Projections[0].DLQ != 0 || r.Projections[1].DLQ != 3 {
					t.Errorf("dlq analytics %d, search %d; want 0, 3", r.Projections[0].DLQ, r.Projections[1].DLQ)
				}
			}},
		{name: "read model unreadable", give: func(o *Observation) { o.Projections[0].Generations, o.Projections[0].GenerationsErr = nil, boom },
			wantCaughtUp: true, wantProblems: []string{"analytics: read model: boom"}},
		{name: "no serving generation", give: func(o *Observation) {
			o.Projections[1].Generations = []projections.Generation{{Number: 1, State: projections.StateBuilding}}
		},
			wantCaughtUp: true, wantProblems: []string{"search: no serving generation (start the daemon, or `orderstream search` setup/migrate)"}},
		{name: "group without members, caught up", give: func(o *Observation) { o.Projections[0].GroupState.Members = nil },
			wantCaughtUp: true, wantProblems: []string{"analytics: group g-analytics has no members: no `orderstream consume analytics` is running"}},
		{name: "group lagging within bound: healthy, not caught up", give: func(o *Observation) {
			o.Projections[0].GroupState = group("g-analytics", []int64{5, 20}, []int64{10, 20})
		}, wantHealthy: true},
		{name: "group lagging above bound", give: func(o *Observation) {
			o.Projections[0].GroupState = group("g-analytics", []int64{0, 0}, []int64{100, 20})
		}, wantProblems: []string{"analytics: group g-analytics lags 120 records (bound 100)"}},
		{name: "group unreadable", give: func(o *Observation) {
			o.Projections[1].GroupState, o.Projections[1].GroupErr, o.Projections[1].TimesRead = consumers.Group{Group: "g-search"}, boom, false
		}, wantCaughtUp: true, wantProblems: []string{"search: group g-search: boom"}},
		{name: "event times unreadable", give: func(o *Observation) { o.Projections[0].Times, o.Projections[0].TimesErr = EventTimes{}, boom },
			wantCaughtUp: true, wantProblems: []string{"analytics: event times: boom"}},
		{name: "stale", give: func(o *Observation) { o.Projections[0].Times.OldestPending = t0.Add(-6 * time.Minute) },
			wantCaughtUp: true, wantProblems: []string{"analytics: group g-analytics is stale: its oldest unprocessed event waits for 6m0s (bound 5m0s)"},
			check: func(t *testing.T, r Report) {
				if r.Projections[0].StalenessSeconds != 360 {
					t.Errorf("staleness %v s, want 360", r.Projections[0].StalenessSeconds)
				}
			}},
		{name: "relay problem: not caught up though every group is", give: func(o *Observation) { o.Relay.SlotActive = false },
			wantProblems: []string{"relay: replication slot s is inactive: no relay is streaming from it"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			o := healthy()
			tt.give(&o)
			r := Evaluate(o, limits, nil)
			want := tt.wantProblems
			if want == nil {
				want = []string{}
			}
			if !slices.Equal(r.Problems, want) {
				t.Errorf("problems:\n  %q\nwant\n  %q", r.Problems, want)
			}
			if r.Healthy != tt.wantHealthy || r.CaughtUp != tt.wantCaughtUp {
				t.Errorf("healthy %v, caught up %v; want %v, %v", r.Healthy, r.CaughtUp, tt.wantHealthy, tt.wantCaughtUp)
			}
			if tt.check != nil {
				tt.check(t, r)
			}
		})
	}
}

// A wait fixes the WAL position of its first look and, once the relay
// passed it, the end offsets of that look: later events do not move the
// target, and the groups are caught up when they reach it.
func TestEvaluateWait(t *testing.T) {
	t.Parallel()
	var w Wait
	steps := []struct {
		name           string
		relay          *relay.Inspection
		ends           []int64 // topic end offsets at this look
		committed      []int64 // both groups' committed offsets
		wantCaughtUp   bool
		wantRelayWords bool // WaitReasons leads with the relay's progress
	}{
		{name: "relay behind the first look's WAL position", relay: streaming("0/100", "0/200"), ends: []int64{10, 20}, committed: []int64{10, 20}, wantRelayWords: true},
		{name: "relay passed it; the ends of this look become the target", relay: streaming("0/200", "0/300"), ends: []int64{15, 20}, committed: []int64{10, 20}, wantRelayWords: true},
		{name: "groups at the target, topic grew since", relay: streaming("0/250", "0/400"), ends: []int64{30, 30}, committed: []int64{15, 20}, wantCaughtUp: true},
	}
	for _, s := range steps {
		o := healthy()
		o.Relay = s.relay
		o.Ends = map[int32]int64{0: s.ends[0], 1: s.ends[1]}
		for i := range o.Projections {
			o.Projections[i].GroupState = group(o.Projections[i].Group, s.committed, s.ends)
		}
		r := Evaluate(o, limits, &w)
		if r.CaughtUp != s.wantCaughtUp || !r.Healthy {
			t.Fatalf("%s: caught up %v, healthy %v (%q); want caught up %v, healthy", s.name, r.CaughtUp, r.Healthy, r.Problems, s.wantCaughtUp)
		}
		reasons := WaitReasons(r)
		if hasRelay := len(reasons) > 0 && reasons[0] == RelaySummary(r.Relay); hasRelay != s.wantRelayWords {
			t.Fatalf("%s: wait reasons %q, want the relay's progress first: %v", s.name, reasons, s.wantRelayWords)
		}
	}
}

func TestRelaySummary(t *testing.T) {
	t.Parallel()
	tests := []struct {
		give *relay.Inspection
		want string
	}{
		{give: streaming("0/100", "0/200"), want: "relay streaming confirmed 0/100 of 0/200"},
		{give: &relay.Inspection{Mode: relay.ModePoll, Unrelayed: 7}, want: "relay (poll) 7 outbox rows not in Kafka"},
		{give: &relay.Inspection{Mode: relay.ModeNotStarted}, want: "relay not started"},
	}
	for _, tt := range tests {
		if got := RelaySummary(tt.give); got != tt.want {
			t.Errorf("RelaySummary(%s) = %q, want %q", tt.give.Mode, got, tt.want)
		}
	}
}

func TestWaitReasons(t *testing.T) {
	t.Parallel()
	r := Report{Relay: streaming("0/1", "0/2"), Problems: []string{"p1"}, Projections: []ProjectionReport{
		{Name: "analytics", Group: consumers.Group{Lag: 4}}, {Name: "search"},
	}}
	want := []string{"relay streaming confirmed 0/1 of 0/2", "analytics lag 4", "search lag 0", "p1"}
	if got := WaitReasons(r); !slices.Equal(got, want) {
		t.Errorf("WaitReasons = %q, want %q", got, want)
	}
	r.CaughtUp = true
	if got := WaitReasons(r); got[0] != "analytics lag 4" {
		t.Errorf("caught up: WaitReasons = %q, want no relay progress", got)
	}
}

func TestConfigValidateJoinsEveryProblem(t *testing.T) {
	t.Parallel()
	err := Config{Timeout: -1, Projections: []Projection{{Name: "a"}, {Name: "a"}}}.Validate()
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{"topic: required", "brokers: required", "timeout -1ns", `projection 0 ("a")`, `projection "a": listed twice`} {
		if !contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
}

func contains(s, sub string) bool { return strings.Contains(s, sub) }
