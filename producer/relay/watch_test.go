package relay

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
)

// TestRelayWatchesTopic: a retention change on the live topic, while the
// relay streams, is noticed within the check interval: the gauge
// orderstream_relay_topic_replayable drops to 0 and an ERROR line names
// the setting.
func TestRelayWatchesTopic(t *testing.T) {
	e := newEnv(t)
	run, logs, gauge, waitFor := startWatched(t, e, "orderstream_relay_topic_replayable")
	waitFor("streaming with a replayable topic", func() bool { return run.r.State() == StateStreaming && gauge() == 1 })

	ms := "3600000"
	if _, err := kadm.NewClient(e.kafka).AlterTopicConfigs(context.Background(),
		[]kadm.AlterConfig{{Op: kadm.SetConfig, Name: "retention.ms", Value: &ms}}, e.topic); err != nil {
		t.Fatal(err)
	}
	waitFor("the retention change reported", func() bool { return gauge() == 0 })
	// One line per change, not per check: topic.TestWatcher.
	if !strings.Contains(logs.String(), "level=ERROR") || !strings.Contains(logs.String(), "retention.ms=3600000") {
		t.Fatalf("no ERROR line naming retention.ms=3600000; logs:\n%s", logs.String())
	}
	if err := run.shutdown(t); err != nil {
		t.Fatal(err)
	}
}

// gaugeOf is the value of gauge name in r's registry, -1 when absent.
func gaugeOf(t testing.TB, r *Relay, name string) float64 {
	t.Helper()
	mfs, err := r.Registry().Gather()
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

// TestRelayRegistersTopicGauges: a relay exposes both topic checks from
// its start, 1 until a check says otherwise (New connects to nothing).
func TestRelayRegistersTopicGauges(t *testing.T) {
	t.Parallel()
	r, err := New(Config{PostgresURL: "postgres://unused", Brokers: []string{"127.0.0.1:1"}, Topic: "orders", Slot: "s"})
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"orderstream_relay_topic_replayable", "orderstream_relay_topic_replicated"} {
		if v := gaugeOf(t, r, name); v != 1 {
			t.Errorf("%s = %v, want 1", name, v)
		}
	}
}

// startWatched starts a relay on e whose topic watcher checks every 200 ms
// and returns it, its log, the named gauge of it, and a poll of a condition
// for up to a minute that fails t naming what, the gauge and the log.
func startWatched(t *testing.T, e *env, gaugeName string) (*running, *syncBuffer, func() float64, func(what string, cond func() bool)) {
	t.Helper()
	cfg := e.config()
	cfg.TopicCheckInterval = 200 * time.Millisecond
	logs := &syncBuffer{}
	run := e.start(t, cfg, WithLogger(slog.New(slog.NewTextHandler(logs, nil))))
	gauge := func() float64 { return gaugeOf(t, run.r, gaugeName) }
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(time.Minute)
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("%s: not within a minute; gauge %v; logs:\n%s", what, gauge(), logs.String())
			}
			time.Sleep(50 * time.Millisecond) // polling a condition with a deadline
		}
	}
	return run, logs, gauge, waitFor
}
