package topic

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
)

// TestWatcherReplication: on three brokers (kfake), a topic provisioned
// with three replicas fits; an operator lowering min.insync.replicas to 1
// while the watcher runs is logged once at ERROR (WARN when accepted) and
// drops orderstream_<component>_topic_replicated to 0, without touching the
// replayable gauge; raising it again logs INFO and sets the gauge back to 1.
func TestWatcherReplication(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name     string
		accepted bool
		want     string // level of the line reporting the problem
	}{
		{name: "refused", want: "level=ERROR"},
		{name: "accepted by the operator", accepted: true, want: "level=WARN"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			adm := fakeCluster(t, 3)
			ctx := context.Background()
			const name = "orders"
			info, _, err := Provision(ctx, adm, Spec{Name: name, Partitions: 3, ReplicationFactor: 3})
			if err != nil || info.Replicas != 3 || info.MinInsync != "2" || info.Brokers != 3 {
				t.Fatalf("provision: %+v %v", info, err)
			}
			var logs bytes.Buffer
			reg := prometheus.NewRegistry()
			w, err := NewWatcher(WatchConfig{Topic: name, Component: "test", Replication: true, ReplicationAccepted: tt.accepted},
				slog.New(slog.NewTextHandler(&logs, nil)), reg)
			if err != nil {
				t.Fatal(err)
			}
			lines := func(level string) int { return strings.Count(logs.String(), level) }
			replicated := func() float64 { return gatheredValue(t, reg, "orderstream_test_topic_replicated") }

			w.check(ctx, adm)
			if replicated() != 1 || gaugeValue(t, w) != 1 || logs.Len() != 0 {
				t.Fatalf("fresh topic: replicated %v, replayable %v, logs %s", replicated(), gaugeValue(t, w), logs.String())
			}

			setMinInsync(t, adm, name, "1")
			w.check(ctx, adm)
			w.check(ctx, adm)
			if lines(tt.want) != 1 || !strings.Contains(logs.String(), "min.insync.replicas=1 with 3 replicas") || replicated() != 0 {
				t.Fatalf("after min.insync.replicas=1, two checks: %d %s lines (want 1), replicated %v; logs %s", lines(tt.want), tt.want, replicated(), logs.String())
			}
			if gaugeValue(t, w) != 1 {
				t.Fatalf("replication moved the replayable gauge to %v", gaugeValue(t, w))
			}

			setMinInsync(t, adm, name, "2")
			w.check(ctx, adm)
			if replicated() != 1 || lines("level=INFO") != 1 || !strings.Contains(logs.String(), "fits its cluster again") {
				t.Fatalf("after min.insync.replicas=2: replicated %v; logs %s", replicated(), logs.String())
			}
		})
	}
}

// TestWatcherJudgesReplicationAtStart: the state a start's own check read
// (JudgeReplication: min.insync.replicas=1 with three replicas, accepted by
// the operator) is logged once, at WARN, and sets the gauge; the watcher's
// checks after it log nothing while it stays the same, and one line when it
// changes. Without Replication it does nothing.
func TestWatcherJudgesReplicationAtStart(t *testing.T) {
	t.Parallel()
	adm := fakeCluster(t, 3)
	ctx := context.Background()
	const name = "orders"
	if _, _, err := Provision(ctx, adm, Spec{Name: name, Partitions: 3, ReplicationFactor: 3}); err != nil {
		t.Fatal(err)
	}
	setMinInsync(t, adm, name, "1")
	info, err := Check(ctx, adm, name)
	if err != nil || len(info.ReplicationProblems()) == 0 {
		t.Fatalf("check: %+v %v", info, err)
	}
	var logs bytes.Buffer
	reg := prometheus.NewRegistry()
	w, err := NewWatcher(WatchConfig{Topic: name, Component: "test", Replication: true, ReplicationAccepted: true},
		slog.New(slog.NewTextHandler(&logs, nil)), reg)
	if err != nil {
		t.Fatal(err)
	}
	warned := func() int {
		return strings.Count(logs.String(), `level=WARN msg="topic is under-replicated for its cluster`)
	}
	replicated := func() float64 { return gatheredValue(t, reg, "orderstream_test_topic_replicated") }

	w.JudgeReplication(info)
	if warned() != 1 || replicated() != 0 {
		t.Fatalf("judged at start: %d WARN lines (want 1), replicated %v; logs %s", warned(), replicated(), logs.String())
	}
	w.check(ctx, adm)
	w.check(ctx, adm)
	if warned() != 1 || replicated() != 0 {
		t.Fatalf("two checks after the start: %d WARN lines (want 1), replicated %v; logs %s", warned(), replicated(), logs.String())
	}

	setMinInsync(t, adm, name, "2")
	w.check(ctx, adm)
	w.check(ctx, adm)
	if warned() != 1 || strings.Count(logs.String(), "fits its cluster again") != 1 || replicated() != 1 {
		t.Fatalf("after min.insync.replicas=2, two checks: want one INFO line, replicated 1 (got %v); logs %s", replicated(), logs.String())
	}

	var quiet bytes.Buffer
	off, err := NewWatcher(WatchConfig{Topic: name, Component: "off"}, slog.New(slog.NewTextHandler(&quiet, nil)), nil)
	if err != nil {
		t.Fatal(err)
	}
	off.JudgeReplication(info)
	if quiet.Len() != 0 {
		t.Fatalf("without Replication: logged %s", quiet.String())
	}
}

// TestWatcherWithoutReplication: by default the watcher neither judges
// replication nor registers its gauge, and an under-replicated topic is
// still replayable.
func TestWatcherWithoutReplication(t *testing.T) {
	t.Parallel()
	adm := fakeCluster(t, 3)
	ctx := context.Background()
	if _, _, err := Provision(ctx, adm, Spec{Name: "rf1", Partitions: 1, ReplicationFactor: 1}); err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	reg := prometheus.NewRegistry()
	w, err := NewWatcher(WatchConfig{Topic: "rf1", Component: "test"}, slog.New(slog.NewTextHandler(&logs, nil)), reg)
	if err != nil {
		t.Fatal(err)
	}
	w.check(ctx, adm)
	if gatheredValue(t, reg, "orderstream_test_topic_replicated") != -1 || gaugeValue(t, w) != 1 || logs.Len() != 0 {
		t.Fatalf("replicated gauge %v (want none), replayable %v, logs %s",
			gatheredValue(t, reg, "orderstream_test_topic_replicated"), gaugeValue(t, w), logs.String())
	}
}

// fakeCluster is an in-memory Kafka of brokers brokers (kfake).
func fakeCluster(t *testing.T, brokers int) *kadm.Client {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(brokers))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return kadm.NewClient(cl)
}

func setMinInsync(t *testing.T, adm *kadm.Client, name, v string) {
	t.Helper()
	rs, err := adm.AlterTopicConfigs(context.Background(), []kadm.AlterConfig{{Op: kadm.SetConfig, Name: topicMinInsync, Value: &v}}, name)
	if err == nil {
		for _, r := range rs {
			if r.Err != nil {
				err = r.Err
			}
		}
	}
	if err != nil {
		t.Fatalf("set %s=%s: %v", topicMinInsync, v, err)
	}
}

// gatheredValue is the value of gauge name in reg, -1 when not registered.
func gatheredValue(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			return mf.GetMetric()[0].GetGauge().GetValue()
		}
	}
	return -1
}
