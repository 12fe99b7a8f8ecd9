package consumers

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
)

// Member is one active member of a consumer group, as DescribeGroups
// reports it.
type Member struct {
	ID         string  `json:"member_id"`
	InstanceID string  `json:"instance_id,omitempty"`
	ClientID   string  `json:"client_id"`
	Host       string  `json:"host"`
	Partitions []int32 `json:"partitions,omitempty"` // assigned partitions of the topic
}

func (m Member) String() string {
	if m.InstanceID != "" {
		// A static member stays in the group for the session timeout after
		// its process stopped, awaiting a restart with the same id.
		return fmt.Sprintf("member %s (instance %s, client %s, host %s)", m.ID, m.InstanceID, m.ClientID, m.Host)
	}
	return fmt.Sprintf("member %s (client %s, host %s)", m.ID, m.ClientID, m.Host)
}

// PartitionLag is one partition of the topic seen from one group.
type PartitionLag struct {
	Partition int32 `json:"partition"`
	// Start and End are the log start offset and the end offset (high
	// watermark) when listed.
	Start int64 `json:"start_offset"`
	End   int64 `json:"end_offset"`
	// Committed is the group's committed offset (the next record to
	// process); -1 when the group never committed on this partition.
	Committed int64 `json:"committed_offset"`
	// Lag is End minus the position the group would consume next (the
	// committed offset, or Start when nothing was committed), in records.
	Lag int64 `json:"lag"`
}

// Position returns the offset the group consumes next on the partition:
// the committed offset, or the log start when nothing was committed (a new
// group of this runtime starts at the earliest offset).
func (p PartitionLag) Position() int64 {
	if p.Committed >= 0 {
		return p.Committed
	}
	return p.Start
}

// Group is a consumer group's state on one topic.
type Group struct {
	Group string `json:"group"`
	// State is the coordinator's state: Empty, Stable, PreparingRebalance,
	// CompletingRebalance, Dead (a group that does not exist).
	State      string         `json:"state"`
	Members    []Member       `json:"members"`
	Partitions []PartitionLag `json:"partitions"`
	// Lag is the sum of the partitions' lags, in records.
	Lag int64 `json:"lag"`
	// Processed is the records between the log start and the committed
	// offsets, summed over partitions: what the group has consumed and
	// committed of what the log still holds.
	Processed int64 `json:"processed"`
}

// Exists reports whether the group is known to the coordinator: it has
// members or committed offsets.
func (g Group) Exists() bool {
	if len(g.Members) > 0 {
		return true
	}
	for _, p := range g.Partitions {
		if p.Committed >= 0 {
			return true
		}
	}
	return false
}

// CaughtUp reports whether the group's position reached ends on every
// partition (ends: partition → offset; partitions not in ends must have
// no lag).
func (g Group) CaughtUp(ends map[int32]int64) bool {
	for _, p := range g.Partitions {
		end, ok := ends[p.Partition]
		if !ok {
			end = p.End
		}
		if p.Position() < end {
			return false
		}
	}
	return true
}

// MembersString names the members, for messages.
func (g Group) MembersString() string {
	parts := make([]string, len(g.Members))
	for i, m := range g.Members {
		parts[i] = m.String()
	}
	return strings.Join(parts, "; ")
}

// InspectGroup describes group (members) and computes its lag on every
// partition of topic from its committed offsets and the listed start and end
// offsets (kafka-consumer-groups --describe). A group that does not exist is
// returned with State "Dead", no members and Committed -1 everywhere. The
// topic must exist.
func InspectGroup(ctx context.Context, adm *kadm.Client, topic, group string) (Group, error) {
	g := Group{Group: group, Members: []Member{}, Partitions: []PartitionLag{}}
	described, err := adm.DescribeGroups(ctx, group)
	if err != nil {
		return g, fmt.Errorf("describe group %s: %w", group, err)
	}
	if d, ok := described[group]; ok {
		if d.Err != nil && !errors.Is(d.Err, kerr.GroupIDNotFound) {
			return g, fmt.Errorf("describe group %s: %w", group, d.Err)
		}
		g.State = d.State
		for _, m := range d.Members {
			mem := Member{ID: m.MemberID, ClientID: m.ClientID, Host: m.ClientHost}
			if m.InstanceID != nil {
				mem.InstanceID = *m.InstanceID
			}
			if ca, ok := m.Assigned.AsConsumer(); ok {
				for _, t := range ca.Topics {
					if t.Topic == topic {
						mem.Partitions = append(mem.Partitions, t.Partitions...)
					}
				}
			}
			sort.Slice(mem.Partitions, func(i, j int) bool { return mem.Partitions[i] < mem.Partitions[j] })
			g.Members = append(g.Members, mem)
		}
	}
	if g.State == "" {
		g.State = "Dead"
	}
	committed, err := adm.FetchOffsets(ctx, group)
	if err != nil && !errors.Is(err, kerr.GroupIDNotFound) {
		return g, fmt.Errorf("fetch committed offsets of group %s: %w", group, err)
	}
	starts, ends, err := TopicOffsets(ctx, adm, topic)
	if err != nil {
		return g, err
	}
	for p, end := range ends {
		pl := PartitionLag{Partition: p, Start: starts[p], End: end, Committed: -1}
		if o, ok := committed.Lookup(topic, p); ok && o.Err == nil && o.At >= 0 {
			pl.Committed = o.At
		}
		pl.Lag = max(0, pl.End-pl.Position())
		g.Lag += pl.Lag
		if pl.Committed >= 0 {
			g.Processed += max(0, pl.Committed-pl.Start)
		}
		g.Partitions = append(g.Partitions, pl)
	}
	sort.Slice(g.Partitions, func(i, j int) bool { return g.Partitions[i].Partition < g.Partitions[j].Partition })
	return g, nil
}

// TopicOffsets lists the log start and end offsets of every partition of
// topic (partition → offset). It fails when the topic does not exist or a
// partition's offsets cannot be listed.
func TopicOffsets(ctx context.Context, adm *kadm.Client, topic string) (starts, ends map[int32]int64, err error) {
	td, err := adm.ListTopics(ctx, topic)
	if err != nil {
		return nil, nil, fmt.Errorf("describe topic %s: %w", topic, err)
	}
	if t, ok := td[topic]; !ok || t.Err != nil {
		if ok && !errors.Is(t.Err, kerr.UnknownTopicOrPartition) {
			return nil, nil, fmt.Errorf("describe topic %s: %w", topic, t.Err)
		}
		return nil, nil, fmt.Errorf("topic %s: %w", topic, ErrNoTopic)
	}
	so, err := adm.ListStartOffsets(ctx, topic)
	if err != nil {
		return nil, nil, fmt.Errorf("list start offsets of %s: %w", topic, err)
	}
	eo, err := adm.ListEndOffsets(ctx, topic)
	if err != nil {
		return nil, nil, fmt.Errorf("list end offsets of %s: %w", topic, err)
	}
	if err := cmp.Or(so.Error(), eo.Error()); err != nil {
		return nil, nil, fmt.Errorf("offsets of topic %s: %w", topic, err)
	}
	starts, ends = map[int32]int64{}, map[int32]int64{}
	so.Each(func(o kadm.ListedOffset) {
		if o.Topic == topic {
			starts[o.Partition] = o.Offset
		}
	})
	eo.Each(func(o kadm.ListedOffset) {
		if o.Topic == topic {
			ends[o.Partition] = o.Offset
		}
	})
	if len(ends) == 0 {
		return nil, nil, fmt.Errorf("topic %s: no partitions: %w", topic, ErrNoTopic)
	}
	return starts, ends, nil
}

// ErrNoTopic: the events topic does not exist (or has no partitions).
var ErrNoTopic = errors.New("topic does not exist")

// DeleteGroup deletes group (its committed offsets). A group that does not
// exist is not an error; a group with members is (kerr.NonEmptyGroup).
func DeleteGroup(ctx context.Context, adm *kadm.Client, group string) error {
	r, err := adm.DeleteGroup(ctx, group)
	if err == nil {
		err = r.Err
	}
	if err != nil && !errors.Is(err, kerr.GroupIDNotFound) {
		return fmt.Errorf("delete consumer group %s: %w", group, err)
	}
	return nil
}
