package topic

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/orderstream/orderstream/schemas"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
)

// Defaults of Spec.
const (
	DefaultPartitions int32 = 12
	// DefaultReplicationFactor -1 takes the broker's
	// default.replication.factor: 1 on a single local broker, 3 on the
	// cluster profile and on production clusters.
	DefaultReplicationFactor int16 = -1
	// MinInsyncReplicas is the min.insync.replicas Provision gives a topic
	// it creates with three replicas or more: an acks=all write (the
	// relay's) is acknowledged once two brokers hold it, so losing one
	// broker loses no acknowledged event and does not stop writes.
	MinInsyncReplicas = 2
)

// Errors returned by Provision and Check; test with errors.Is.
var (
	// ErrNotFound: the topic does not exist.
	ErrNotFound = errors.New("topic does not exist")
	// ErrNotReplayable: the topic's retention or cleanup policy would let
	// Kafka delete events, so a replay from offset zero would miss some.
	ErrNotReplayable = errors.New("topic does not keep every event forever")
	// ErrPartitions: the topic exists with another partition count than
	// asked for.
	ErrPartitions = errors.New("topic has a different partition count")
	// ErrUnderReplicated: on a cluster of several brokers, the topic has one
	// replica per partition (losing its broker loses events), or three
	// replicas or more with min.insync.replicas below 2 (an acknowledged
	// write may live on one broker only).
	ErrUnderReplicated = errors.New("topic is under-replicated for its cluster")
)

// Spec describes the topic to provision.
type Spec struct {
	// Name of the topic (required).
	Name string
	// Partitions is the partition count; 0 means DefaultPartitions (12).
	// Order ids are hashed onto partitions (murmur2, like Java clients), so
	// this must never change once events were written.
	Partitions int32
	// ReplicationFactor is the number of replicas; 0 means
	// DefaultReplicationFactor (-1: the broker's default.replication.factor).
	// A topic created with three replicas or more also gets
	// min.insync.replicas=MinInsyncReplicas.
	ReplicationFactor int16
}

func (s Spec) withDefaults() Spec {
	if s.Partitions == 0 {
		s.Partitions = DefaultPartitions
	}
	if s.ReplicationFactor == 0 {
		s.ReplicationFactor = DefaultReplicationFactor
	}
	return s
}

// Validate returns every problem of s at once.
func (s Spec) Validate() error {
	var errs []error
	if s.Name == "" {
		errs = append(errs, errors.New("topic name is empty"))
	}
	if s.Partitions < 0 {
		errs = append(errs, fmt.Errorf("partitions %d: want > 0 (0 = %d)", s.Partitions, DefaultPartitions))
	}
	if s.ReplicationFactor < -1 {
		errs = append(errs, fmt.Errorf("replication factor %d: want > 0, or -1 for the broker default", s.ReplicationFactor))
	}
	return errors.Join(errs...)
}

// Info is what Check found out about a topic.
type Info struct {
	Name           string
	Partitions     int
	RetentionMs    string // "-1" = forever
	RetentionBytes string // "-1" = unbounded
	CleanupPolicy  string // "delete", "compact" or "compact,delete"
	// MaxMessageBytes is the topic's max.message.bytes (the largest record
	// batch the brokers accept, after compression); 0 when not reported.
	MaxMessageBytes int64
	Replicas        int    // replicas of the least replicated partition
	MinInsync       string // min.insync.replicas
	Brokers         int    // brokers in the cluster
}

// ReplicationProblems lists why the topic's replication does not fit its
// cluster (empty when it does): one replica on a cluster of several
// brokers, or three replicas or more with min.insync.replicas below 2.
func (i Info) ReplicationProblems() []string {
	var p []string
	if i.Brokers > 1 && i.Replicas == 1 {
		p = append(p, fmt.Sprintf("replication factor 1 on a cluster of %d brokers (want 3: losing the one broker of a partition loses its events)", i.Brokers))
	}
	if n, err := strconv.Atoi(i.MinInsync); i.Replicas >= 3 && err == nil && n < MinInsyncReplicas {
		p = append(p, fmt.Sprintf("min.insync.replicas=%s with %d replicas (want %d: an acknowledged event may be held by one broker only)", i.MinInsync, i.Replicas, MinInsyncReplicas))
	}
	return p
}

// RequireReplicated returns an error wrapping ErrUnderReplicated that names
// every replication problem of info, or nil.
func RequireReplicated(info Info) error {
	p := info.ReplicationProblems()
	if len(p) == 0 {
		return nil
	}
	return fmt.Errorf("topic %s: %w: %s. Recreate it with `orderstream topic create --replication-factor 3` (an empty topic), "+
		"or raise min.insync.replicas with `kafka-configs.sh --alter --entity-type topics --entity-name %s --add-config min.insync.replicas=%d`",
		info.Name, ErrUnderReplicated, strings.Join(p, "; "), info.Name, MinInsyncReplicas)
}

// Problems lists why the topic would not keep every event forever (empty
// when it does): finite retention.ms or retention.bytes, or compaction.
func (i Info) Problems() []string {
	var p []string
	if i.RetentionMs != schemas.TopicForever {
		p = append(p, fmt.Sprintf("retention.ms=%s (want -1: events older than that are deleted)", i.RetentionMs))
	}
	if i.RetentionBytes != schemas.TopicForever {
		p = append(p, fmt.Sprintf("retention.bytes=%s (want -1: the oldest events are deleted beyond that size)", i.RetentionBytes))
	}
	if i.CleanupPolicy != schemas.TopicDelete {
		p = append(p, fmt.Sprintf("cleanup.policy=%s (want delete: compaction keeps only the last event of each order)", i.CleanupPolicy))
	}
	return p
}

// Check describes topic name. It returns ErrNotFound when it does not exist,
// also when the broker asked for its configs does not know it yet (a topic
// just created: Provision retries that for up to 15 s).
// It does not judge the settings; see Info.Problems and RequireReplayable.
func Check(ctx context.Context, adm *kadm.Client, name string) (Info, error) {
	details, err := adm.ListTopics(ctx, name)
	if err != nil {
		return Info{}, fmt.Errorf("describe topic %s: %w", name, err)
	}
	d, ok := details[name]
	if !ok || errors.Is(d.Err, kerr.UnknownTopicOrPartition) {
		return Info{}, fmt.Errorf("topic %s: %w", name, ErrNotFound)
	}
	if d.Err != nil {
		return Info{}, fmt.Errorf("describe topic %s: %w", name, d.Err)
	}
	info := Info{Name: name, Partitions: len(d.Partitions)}
	for _, p := range d.Partitions {
		if info.Replicas == 0 || len(p.Replicas) < info.Replicas {
			info.Replicas = len(p.Replicas)
		}
	}
	brokers, err := adm.ListBrokers(ctx)
	if err != nil {
		return Info{}, fmt.Errorf("list brokers: %w", err)
	}
	info.Brokers = len(brokers)
	rcs, err := adm.DescribeTopicConfigs(ctx, name)
	var rc kadm.ResourceConfig
	if err == nil {
		rc, err = rcs.On(name, nil)
	}
	if err == nil {
		err = rc.Err
	}
	if errors.Is(err, kerr.UnknownTopicOrPartition) {
		// Listed in the metadata but not yet known to the broker asked for
		// its configs: a topic just created, on a loaded cluster.
		return Info{}, fmt.Errorf("topic %s: %w (describe configs: %v)", name, ErrNotFound, err)
	}
	if err != nil {
		return Info{}, fmt.Errorf("describe configs of topic %s: %w", name, err)
	}
	for _, c := range rc.Configs {
		switch c.Key {
		case schemas.TopicRetentionMs:
			info.RetentionMs = c.MaybeValue()
		case schemas.TopicRetentionBytes:
			info.RetentionBytes = c.MaybeValue()
		case schemas.TopicCleanupPolicy:
			info.CleanupPolicy = c.MaybeValue()
		case "max.message.bytes":
			info.MaxMessageBytes, _ = strconv.ParseInt(c.MaybeValue(), 10, 64)
		case topicMinInsync:
			info.MinInsync = c.MaybeValue()
		}
	}
	return info, nil
}

// RequireReplayable returns an error wrapping ErrNotReplayable that names
// every problem of info, or nil.
func RequireReplayable(info Info) error {
	p := info.Problems()
	if len(p) == 0 {
		return nil
	}
	return fmt.Errorf("topic %s: %w: %s. Read models are rebuilt by replaying the topic from offset zero; "+
		"with these settings a replay silently misses events. Fix it with "+
		"`kafka-configs.sh --alter --entity-type topics --entity-name %s --add-config retention.ms=-1,retention.bytes=-1,cleanup.policy=delete`",
		info.Name, ErrNotReplayable, strings.Join(p, "; "), info.Name)
}

const topicMinInsync = "min.insync.replicas"

// Provision creates the topic of spec with schemas.ReplayTopicConfigs (and
// min.insync.replicas=MinInsyncReplicas when it gets three replicas or
// more, asked for or by the broker default), or,
// when it exists, verifies it: every one of those settings (ErrNotReplayable) and
// the partition count (ErrPartitions). created reports whether it was
// created now. Safe to call on every start and concurrently.
func Provision(ctx context.Context, adm *kadm.Client, spec Spec) (info Info, created bool, err error) {
	if err := spec.Validate(); err != nil {
		return Info{}, false, err
	}
	spec = spec.withDefaults()
	configs := schemas.ReplayTopicConfigs()
	if spec.ReplicationFactor >= 3 {
		v := strconv.Itoa(MinInsyncReplicas)
		configs[topicMinInsync] = &v
	}
	resp, err := adm.CreateTopic(ctx, spec.Partitions, spec.ReplicationFactor, configs, spec.Name)
	switch {
	case err == nil:
		created = true
	case errors.Is(err, kerr.TopicAlreadyExists):
	default:
		msg := resp.ErrMessage
		if msg != "" {
			msg = " (" + msg + ")"
		}
		return Info{}, false, fmt.Errorf("create topic %s with %d partitions, replication factor %d: %w%s", spec.Name, spec.Partitions, spec.ReplicationFactor, err, msg)
	}
	info, err = checkSettled(ctx, adm, spec.Name)
	if err != nil {
		return Info{}, created, err
	}
	if n, _ := strconv.Atoi(info.MinInsync); created && info.Replicas >= 3 && n < MinInsyncReplicas {
		// The broker default gave three replicas or more, and a
		// min.insync.replicas below 2.
		v := strconv.Itoa(MinInsyncReplicas)
		rs, err := adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{{Op: kadm.SetConfig, Name: topicMinInsync, Value: &v}}, spec.Name)
		for _, r := range rs {
			err = errors.Join(err, r.Err)
		}
		if err != nil {
			return info, created, fmt.Errorf("set %s=%s on topic %s: %w", topicMinInsync, v, spec.Name, err)
		}
		info.MinInsync = v
	}
	if err := RequireReplayable(info); err != nil {
		return info, created, err
	}
	if info.Partitions != int(spec.Partitions) {
		return info, created, fmt.Errorf("topic %s has %d partitions, asked for %d: %w (changing it would move orders to other partitions)",
			spec.Name, info.Partitions, spec.Partitions, ErrPartitions)
	}
	return info, created, nil
}

// checkSettled is Check, retried for up to 15 s while a just-created topic
// is not yet in the metadata of the broker asked.
func checkSettled(ctx context.Context, adm *kadm.Client, name string) (Info, error) {
	deadline := time.Now().Add(15 * time.Second)
	for {
		info, err := Check(ctx, adm, name)
		if (err == nil && info.Partitions > 0) || time.Now().After(deadline) || (err != nil && !errors.Is(err, ErrNotFound)) {
			return info, err
		}
		select {
		case <-ctx.Done():
			return Info{}, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}
