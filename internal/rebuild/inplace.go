package rebuild

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/orderstream/orderstream/consumers"
	"github.com/orderstream/orderstream/projections"
	"github.com/twmb/franz-go/pkg/kadm"
)

// From selects where an in-place replay starts. The zero From is the
// earliest offset of every partition (a full replay).
type From struct {
	// Offset, when set (≥ 0), is the offset of every partition, clamped to
	// each partition's [log start, end] (kafka-consumer-groups --to-offset).
	Offset int64
	// Time, when not zero, selects on every partition the first record
	// whose timestamp is at or after it, or the end when there is none
	// (kafka-consumer-groups --to-datetime).
	Time time.Time
}

// Earliest is the From of a full replay.
var Earliest = From{Offset: -1}

// IsFull reports whether f replays from the earliest offset.
func (f From) IsFull() bool { return f.Offset < 0 && f.Time.IsZero() }

func (f From) String() string {
	switch {
	case !f.Time.IsZero():
		return "timestamp " + f.Time.UTC().Format(time.RFC3339Nano)
	case f.Offset >= 0:
		return "offset " + strconv.FormatInt(f.Offset, 10)
	default:
		return "the earliest offset"
	}
}

// ParseFrom parses --from: "" or "earliest" (full replay), a non-negative
// offset, or an RFC 3339 timestamp (or a date, YYYY-MM-DD, UTC midnight).
func ParseFrom(s string) (From, error) {
	s = strings.TrimSpace(s)
	if s == "" || s == "earliest" {
		return Earliest, nil
	}
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		if n < 0 {
			return From{}, fmt.Errorf("--from %s: an offset must not be negative", s)
		}
		return From{Offset: n}, nil
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02"} {
		if t, err := time.Parse(layout, s); err == nil {
			return From{Offset: -1, Time: t.UTC()}, nil
		}
	}
	return From{}, fmt.Errorf("--from %q: want earliest, an offset (e.g. 1200) or an RFC 3339 time (e.g. 2011-12-01T00:00:00Z) or a date (2011-12-01)", s)
}

// PlanEntry is one partition of an offset reset.
type PlanEntry struct {
	Partition int32 `json:"partition"`
	Current   int64 `json:"current"` // committed offset; -1 when none
	New       int64 `json:"new"`
}

// Plan is an in-place replay: the group's offsets before and after, and
// whether the generation is cleared. Blocked is set when the group has
// members (or is rebalancing): ExecuteInPlace then refuses.
type Plan struct {
	Projection string              `json:"projection"`
	Group      string              `json:"group"`
	Topic      string              `json:"topic"`
	From       string              `json:"from"`
	Generation uint32              `json:"generation"` // the serving generation
	Clear      bool                `json:"clear"`      // delete its data (full replays only)
	Partitions []PlanEntry         `json:"partitions"`
	Blocked    *ActiveMembersError `json:"blocked_by,omitempty"`
}

// ActiveMembersError refuses an in-place replay while the group has members:
// moving the offsets of a running consumer is ignored or overwritten by it.
type ActiveMembersError struct {
	Group   string             `json:"group"`
	State   string             `json:"state"`
	Members []consumers.Member `json:"members"`
}

func (e *ActiveMembersError) Error() string {
	static := ""
	for _, m := range e.Members {
		if m.InstanceID != "" {
			static = " (a stopped daemon with an instance id stays a member for its --session-timeout, 20s by default)"
			break
		}
	}
	return fmt.Sprintf("consumer group %s is %s with %d active member(s): %s; stop them (the `orderstream consume` daemons)%s before an in-place replay, or use --mode shadow",
		e.Group, e.State, len(e.Members), consumers.Group{Members: e.Members}.MembersString(), static)
}

// PlanInPlace computes the reset of group to from on topic for projection p;
// a group with members (or rebalancing) sets plan.Blocked, which
// ExecuteInPlace refuses. Nothing is changed.
func PlanInPlace(ctx context.Context, adm *kadm.Client, p projections.ReadModel, topic, group string, from From) (Plan, error) {
	plan := Plan{Projection: p.Name(), Group: group, Topic: topic, From: from.String(), Clear: from.IsFull()}
	g, err := consumers.InspectGroup(ctx, adm, topic, group)
	if err != nil {
		return plan, err
	}
	plan.Blocked = activeMembers(group, g)
	gens, err := p.Generations(ctx)
	if err != nil {
		return plan, err
	}
	if plan.Generation = projections.Serving(gens); plan.Generation == 0 {
		return plan, fmt.Errorf("%s has no serving generation: nothing to replay into (start its daemon once, or migrate/setup it)", p.Name())
	}
	var at map[int32]int64
	if !from.Time.IsZero() {
		lo, err := adm.ListOffsetsAfterMilli(ctx, from.Time.UnixMilli(), topic)
		if err != nil {
			return plan, fmt.Errorf("offsets of %s after %s: %w", topic, from.Time.Format(time.RFC3339), err)
		}
		if err := lo.Error(); err != nil {
			return plan, fmt.Errorf("offsets of %s after %s: %w", topic, from.Time.Format(time.RFC3339), err)
		}
		at = map[int32]int64{}
		lo.Each(func(o kadm.ListedOffset) { at[o.Partition] = o.Offset })
	}
	for _, pl := range g.Partitions {
		e := PlanEntry{Partition: pl.Partition, Current: pl.Committed, New: pl.Start}
		switch {
		case at != nil:
			if o, ok := at[pl.Partition]; ok && o >= 0 {
				e.New = o
			} else {
				e.New = pl.End
			}
		case from.Offset >= 0:
			e.New = min(max(from.Offset, pl.Start), pl.End)
		}
		plan.Partitions = append(plan.Partitions, e)
	}
	sort.Slice(plan.Partitions, func(i, j int) bool { return plan.Partitions[i].Partition < plan.Partitions[j].Partition })
	return plan, nil
}

// activeMembers is the refusal of an in-place replay for group g, or nil.
func activeMembers(group string, g consumers.Group) *ActiveMembersError {
	if len(g.Members) > 0 || (g.State != "Empty" && g.State != "Dead") {
		return &ActiveMembersError{Group: group, State: g.State, Members: g.Members}
	}
	return nil
}

// ExecuteInPlace applies plan: it checks again that the group has no
// members (*ActiveMembersError), commits the new offsets for the group, then (full replays)
// clears the serving generation. Offsets first: should clearing fail, the
// daemon replays into the old data, harmlessly (the sinks are idempotent).
func ExecuteInPlace(ctx context.Context, adm *kadm.Client, p projections.ReadModel, plan Plan) error {
	g, err := consumers.InspectGroup(ctx, adm, plan.Topic, plan.Group)
	if err != nil {
		return err
	}
	if blocked := activeMembers(plan.Group, g); blocked != nil {
		return blocked
	}
	var os kadm.Offsets
	for _, e := range plan.Partitions {
		os.Add(kadm.Offset{Topic: plan.Topic, Partition: e.Partition, At: e.New, LeaderEpoch: -1})
	}
	if err := adm.CommitAllOffsets(ctx, plan.Group, os); err != nil {
		return fmt.Errorf("reset offsets of group %s: %w", plan.Group, err)
	}
	if plan.Clear {
		if err := p.Clear(ctx, plan.Generation); err != nil {
			return errors.Join(err, fmt.Errorf("offsets of %s were reset: the daemon will replay into the old data (idempotent); clear again by re-running", plan.Group))
		}
	}
	return nil
}
