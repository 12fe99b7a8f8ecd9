package status

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/orderstream/orderstream/internal/testenv"
	"github.com/orderstream/orderstream/producer/topic"
	"github.com/orderstream/orderstream/projections"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// readModelFunc is a ReadModel of a function.
type readModelFunc func(ctx context.Context) ([]projections.Generation, error)

func (f readModelFunc) Generations(ctx context.Context) ([]projections.Generation, error) {
	return f(ctx)
}

// The Inspector reads a real topic and group: records, replayability, lag,
// and the event times around the group's position (last processed: the
// newest committed record; staleness: the age of the oldest pending one).
func TestInspectorReadsTopicGroupAndEventTimes(t *testing.T) {
	brokers := testenv.KafkaBrokers(t)
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	name, group := testenv.Name("status"), testenv.Name("status-group")
	if _, _, err := topic.Provision(ctx, adm, topic.Spec{Name: name, Partitions: 2}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_, _ = adm.DeleteTopics(context.Background(), name)
		_, _ = adm.DeleteGroups(context.Background(), group)
	})
	base := time.Now().Add(-time.Hour).Truncate(time.Millisecond).UTC()
	at := func(minutes int) time.Time { return base.Add(time.Duration(minutes) * time.Minute) }
	// Partition 0: offsets 0..3 at minutes 0..3; partition 1: offsets 0..1
	// at minutes 10, 11.
	for p, minutes := range [][]int{{0, 1, 2, 3}, {10, 11}} {
		for _, m := range minutes {
			r := &kgo.Record{Topic: name, Partition: int32(p), Timestamp: at(m), Value: []byte{byte(m)}}
			if err := cl.ProduceSync(ctx, r).FirstErr(); err != nil {
				t.Fatal(err)
			}
		}
	}
	// The group processed offsets 0..1 of partition 0 and both of partition 1.
	var commit kadm.Offsets
	commit.Add(kadm.Offset{Topic: name, Partition: 0, At: 2})
	commit.Add(kadm.Offset{Topic: name, Partition: 1, At: 2})
	if resp, err := adm.CommitOffsets(ctx, group, commit); err != nil || resp.Error() != nil {
		t.Fatalf("commit: %v %v", err, resp.Error())
	}

	serving := readModelFunc(func(context.Context) ([]projections.Generation, error) {
		return []projections.Generation{{Number: 4, State: projections.StateServing}}, nil
	})
	insp, err := New(Config{Topic: name, Brokers: brokers, Limits: Limits{MaxLag: 100, MaxStaleness: 2 * time.Hour},
		Projections: []Projection{{Name: "p", Group: group, ReadModel: serving}}}, adm, nil)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	r := insp.Report(ctx, nil)
	if r.Records != 6 || !r.Replayable || r.Relay != nil {
		t.Fatalf("records %d, replayable %v, relay %v; want 6, true, nil", r.Records, r.Replayable, r.Relay)
	}
	wantProblem := "p: group " + group + " has no members: no `orderstream consume p` is running"
	if len(r.Problems) != 1 || r.Problems[0] != wantProblem || r.Healthy || r.CaughtUp {
		t.Fatalf("problems %q, healthy %v, caught up %v; want only %q, unhealthy, not caught up", r.Problems, r.Healthy, r.CaughtUp, wantProblem)
	}
	p := r.Projections[0]
	if p.Serving != 4 || p.Group.Lag != 2 || p.Group.Processed != 4 || p.DLQ != 0 {
		t.Errorf("serving %d, lag %d, processed %d, dlq %d; want 4, 2, 4, 0", p.Serving, p.Group.Lag, p.Group.Processed, p.DLQ)
	}
	if !p.LastEvent.Equal(at(11)) {
		t.Errorf("last event %s, want %s (the newest committed record)", p.LastEvent, at(11))
	}
	// Staleness is measured at the report's time: the age of offset 2 of
	// partition 0 (minute 2).
	minWant, maxWant := start.Sub(at(2)).Seconds()-1, time.Since(at(2)).Seconds()+1
	if p.StalenessSeconds < minWant || p.StalenessSeconds > maxWant || strings.Contains(strings.Join(r.Problems, " "), "stale") {
		t.Errorf("staleness %.1f s, want %.1f..%.1f s and no stale problem", p.StalenessSeconds, minWant, maxWant)
	}
}
