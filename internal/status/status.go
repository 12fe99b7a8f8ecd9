package status

import (
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pglogrepl"
	"github.com/orderstream/orderstream/consumers"
	"github.com/orderstream/orderstream/producer/relay"
	"github.com/orderstream/orderstream/producer/topic"
	"github.com/orderstream/orderstream/projections"
)

// Limits bound what Evaluate calls healthy.
type Limits struct {
	// MaxLag is the largest healthy lag of a group, in records; it also
	// bounds a poll-mode relay's outbox rows not yet in Kafka.
	MaxLag int64
	// MaxStaleness is the largest healthy age of a group's oldest
	// unprocessed event.
	MaxStaleness time.Duration
	// MaxSlotLagBytes is the largest healthy WAL, in bytes, the relay's
	// replication slot may pin.
	MaxSlotLagBytes int64
}

// Report is one judgement of the pipeline; its JSON form is
// `orderstream status --json`.
type Report struct {
	Time    time.Time `json:"time"`
	Topic   string    `json:"topic"`
	Healthy bool      `json:"healthy"`
	// CaughtUp: every group committed up to the topic's end offsets (with
	// a Wait: those listed once the relay passed the WAL position of the
	// wait's start).
	CaughtUp bool     `json:"caught_up"`
	Problems []string `json:"problems"`
	Records  int64    `json:"kafka_records"` // records the topic holds (end − start, summed)
	// Replayable: the topic can be replayed from offset zero
	// (topic.CheckReplayable: infinite retention, no compaction, every log
	// start offset 0); when false, Problems says why.
	Replayable bool `json:"replayable"`
	// Replication lists why the topic's replication does not fit its
	// cluster (topic.Info.ReplicationProblems: replication factor 1 on
	// several brokers, min.insync.replicas below 2 with three replicas or
	// more); empty when it does or was not read. Reported, not a problem:
	// the relay runs so under --allow-under-replicated (and then reports it
	// too: orderstream_relay_topic_replicated 0, a WARN line).
	Replication []string           `json:"replication_problems,omitempty"`
	Relay       *relay.Inspection  `json:"relay,omitempty"`
	Projections []ProjectionReport `json:"projections"`
}

// ProjectionReport is one projection in a Report.
type ProjectionReport struct {
	Name             string                   `json:"projection"`
	Serving          uint32                   `json:"serving_generation"`
	Building         []uint32                 `json:"building_generations"`
	Generations      []projections.Generation `json:"generations"`
	Group            consumers.Group          `json:"consumer_group"`
	DLQ              int64                    `json:"dlq_records"`
	LastEvent        time.Time                `json:"last_event_time,omitzero"`
	StalenessSeconds float64                  `json:"staleness_seconds"`
	Errors           []string                 `json:"errors,omitempty"`
}

// Observation is what one look at the services found, judged by Evaluate.
// A read that was not attempted (because an earlier one failed) is nil or
// false, as each field says.
type Observation struct {
	Time  time.Time // when the look began (UTC); staleness is measured at it
	Topic string
	// Relay is nil when the relay is not checked (no PostgreSQL), else its
	// inspection or RelayErr.
	Relay    *relay.Inspection
	RelayErr error
	// Starts and Ends are the topic's offsets (partition → offset); nil
	// with OffsetsErr. Replay, ReplayErr and DLQ, DLQErr are read only when
	// the offsets were.
	Starts, Ends map[int32]int64
	OffsetsErr   error
	Replay       *topic.Replayability
	ReplayErr    error
	DLQ          DLQCounts
	DLQErr       error
	// Projections in the order to report them.
	Projections []ProjectionObservation
}

// ProjectionObservation is what one look found of one projection.
type ProjectionObservation struct {
	Name  string
	Group string // its consumer group's name
	// Generations of the read model, or GenerationsErr.
	Generations    []projections.Generation
	GenerationsErr error
	// GroupState is the group on the topic, read only when the topic's
	// offsets were (GroupRead), or GroupErr.
	GroupRead  bool
	GroupState consumers.Group
	GroupErr   error
	// Times are the group's event times, read only when the group was
	// (TimesRead), or TimesErr.
	TimesRead bool
	Times     EventTimes
	TimesErr  error
}

// Wait carries the targets of a wait for the pipeline to catch up across
// successive Evaluate calls: the WAL position of the first relay
// inspection and the topic's end offsets once the relay relayed up to it.
// The zero value starts a wait; one Wait serves one goroutine.
type Wait struct {
	targetLSN  pglogrepl.LSN
	haveLSN    bool
	targetEnds map[int32]int64
}

// Evaluate judges o against l: the problems (healthy means none), whether
// every group caught up, and the report to print. The rules:
//   - relay (when checked): an inspection error; never ran with the slot;
//     WAL mode: slot missing or inactive, checkpoint not streaming, slot
//     pinning more than MaxSlotLagBytes; poll mode: more than MaxLag rows
//     not in Kafka (RelayProblems);
//   - topic: offsets unreadable; not replayable from offset zero
//     (topic.Replayability.Problems); DLQ unreadable (replication problems
//     are reported in Report.Replication, not counted);
//   - per projection: read model unreadable or no serving generation;
//     group unreadable, without members, lagging more than MaxLag, event
//     times unreadable, or older pending events than MaxStaleness.
//
// Caught up: no relay or topic problem, and every group's position reached
// the end offsets — without w those of o; with w those listed once the
// relay had relayed everything committed before the wait's first look (no
// such offsets yet: not caught up). Evaluate records those targets in w.
func Evaluate(o Observation, l Limits, w *Wait) Report {
	r := Report{Time: o.Time, Topic: o.Topic, Problems: []string{}, Projections: []ProjectionReport{}}
	problem := func(format string, args ...any) { r.Problems = append(r.Problems, fmt.Sprintf(format, args...)) }

	relayCaughtUp := true
	if o.Relay != nil || o.RelayErr != nil {
		relayCaughtUp = false
		if o.RelayErr != nil {
			problem("relay: %v", o.RelayErr)
		} else {
			rs := *o.Relay
			r.Relay = &rs
			r.Problems = append(r.Problems, RelayProblems(rs, l)...)
			if w != nil && !w.haveLSN {
				w.targetLSN, w.haveLSN = rs.Current(), true
			}
			relayCaughtUp = w == nil || rs.RelayedUpTo(w.targetLSN)
		}
	}

	if o.OffsetsErr != nil {
		problem("kafka: %v", o.OffsetsErr)
	} else {
		for p, end := range o.Ends {
			r.Records += end - o.Starts[p]
		}
		switch {
		case o.ReplayErr != nil:
			problem("kafka: %v", o.ReplayErr)
		case o.Replay != nil && !o.Replay.Replayable():
			problem("topic %s cannot be replayed from offset zero (a rebuild would miss events): %s", o.Topic, strings.Join(o.Replay.Problems(), "; "))
		case o.Replay != nil:
			r.Replayable = true
		}
		if o.Replay != nil {
			r.Replication = o.Replay.Info.ReplicationProblems()
		}
	}
	if w != nil && relayCaughtUp && w.targetEnds == nil && o.Ends != nil {
		w.targetEnds = o.Ends
	}
	if o.OffsetsErr == nil && o.DLQErr != nil {
		problem("dlq: %v", o.DLQErr)
	}

	targetEnds := o.Ends
	if w != nil {
		targetEnds = w.targetEnds
	}
	caughtUp := targetEnds != nil && len(r.Problems) == 0
	for _, po := range o.Projections {
		pr := projectionReport(po, o.Time, o.DLQ, l)
		for _, msg := range pr.Errors {
			problem("%s: %s", po.Name, msg)
		}
		if targetEnds == nil || !pr.Group.CaughtUp(targetEnds) {
			caughtUp = false
		}
		r.Projections = append(r.Projections, pr)
	}
	r.CaughtUp = caughtUp
	r.Healthy = len(r.Problems) == 0
	return r
}

// RelayProblems says what is unhealthy about the relay in, by the rules
// of Evaluate.
func RelayProblems(in relay.Inspection, l Limits) []string {
	var p []string
	problem := func(format string, args ...any) { p = append(p, fmt.Sprintf(format, args...)) }
	switch in.Mode {
	case relay.ModeNotStarted:
		problem("relay: never ran with slot %s (no checkpoint, no poll cursor): start `orderstream relay`", in.Slot)
	case relay.ModeWAL:
		if !in.SlotExists {
			problem("relay: replication slot %s is missing (the relay stops with ErrSlotLost; see `orderstream relay --help`)", in.Slot)
		} else if !in.SlotActive {
			problem("relay: replication slot %s is inactive: no relay is streaming from it", in.Slot)
		}
		if !in.Streaming() {
			problem("relay: checkpoint of slot %s is %q, not streaming", in.Slot, in.CheckpointState)
		}
		if in.SlotLagBytes > l.MaxSlotLagBytes {
			problem("relay: slot %s pins %d bytes of WAL (bound %d)", in.Slot, in.SlotLagBytes, l.MaxSlotLagBytes)
		}
	case relay.ModePoll:
		if in.Unrelayed > l.MaxLag {
			problem("relay: %d outbox rows not in Kafka (bound %d)", in.Unrelayed, l.MaxLag)
		}
	}
	return p
}

// projectionReport judges one projection by the rules of Evaluate.
func projectionReport(po ProjectionObservation, now time.Time, dlq DLQCounts, l Limits) ProjectionReport {
	pr := ProjectionReport{Name: po.Name, Building: []uint32{}, Generations: []projections.Generation{}}
	errorf := func(format string, args ...any) { pr.Errors = append(pr.Errors, fmt.Sprintf(format, args...)) }
	if po.GenerationsErr != nil {
		errorf("read model: %v", po.GenerationsErr)
	} else {
		pr.Generations = po.Generations
		pr.Serving = projections.Serving(po.Generations)
		pr.Building = append(pr.Building, projections.Building(po.Generations)...)
		if pr.Serving == 0 {
			errorf("no serving generation (start the daemon, or `orderstream %s` setup/migrate)", po.Name)
		}
	}
	if !po.GroupRead {
		pr.Group = consumers.Group{Group: po.Group, State: "unknown"}
		return pr
	}
	pr.Group = po.GroupState
	if po.GroupErr != nil {
		errorf("group %s: %v", po.Group, po.GroupErr)
		return pr
	}
	grp := po.GroupState
	pr.DLQ = dlq.ByGroup[grp.Group]
	if len(grp.Members) == 0 {
		errorf("group %s has no members: no `orderstream consume %s` is running", grp.Group, po.Name)
	}
	if grp.Lag > l.MaxLag {
		errorf("group %s lags %d records (bound %d)", grp.Group, grp.Lag, l.MaxLag)
	}
	if !po.TimesRead {
		return pr
	}
	if po.TimesErr != nil {
		errorf("event times: %v", po.TimesErr)
		return pr
	}
	pr.LastEvent = po.Times.LastProcessed
	st := po.Times.Staleness(now)
	pr.StalenessSeconds = st.Seconds()
	if st > l.MaxStaleness {
		errorf("group %s is stale: its oldest unprocessed event waits for %s (bound %s)", grp.Group, st.Round(time.Second), l.MaxStaleness)
	}
	return pr
}

// WaitReasons says what is not caught up or not healthy yet in r: the
// relay's progress (RelaySummary) while not caught up, each projection's
// lag, then the problems.
func WaitReasons(r Report) []string {
	var out []string
	if r.Relay != nil && !r.CaughtUp {
		out = append(out, RelaySummary(r.Relay))
	}
	for _, p := range r.Projections {
		out = append(out, fmt.Sprintf("%s lag %d", p.Name, p.Group.Lag))
	}
	out = append(out, r.Problems...)
	return out
}

// RelaySummary is the relay's progress in one phrase.
func RelaySummary(r *relay.Inspection) string {
	switch r.Mode {
	case relay.ModeWAL:
		return fmt.Sprintf("relay %s confirmed %s of %s", r.CheckpointState, r.ConfirmedLSN, r.CurrentLSN)
	case relay.ModePoll:
		return fmt.Sprintf("relay (poll) %d outbox rows not in Kafka", r.Unrelayed)
	default:
		return "relay not started"
	}
}
