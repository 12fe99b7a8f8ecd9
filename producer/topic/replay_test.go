package topic

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"

	"github.com/orderstream/orderstream/internal/testenv"
	dto "github.com/prometheus/client_model/go"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

func TestReplayabilityProblems(t *testing.T) {
	t.Parallel()
	ok := Info{Name: "o", RetentionMs: "-1", RetentionBytes: "-1", CleanupPolicy: "delete"}
	tests := []struct {
		name string
		give Replayability
		want []string
	}{
		{name: "replayable", give: Replayability{Info: ok, Starts: map[int32]int64{0: 0, 1: 0}}},
		{name: "head deleted", give: Replayability{Info: ok, Starts: map[int32]int64{2: 10, 0: 0, 1: 3}},
			want: []string{"partition 1: log start offset 3, want 0 (offsets 0..2 were deleted)", "partition 2: log start offset 10, want 0 (offsets 0..9 were deleted)"}},
		{name: "finite retention and head deleted", give: Replayability{Info: Info{Name: "o", RetentionMs: "1000", RetentionBytes: "-1", CleanupPolicy: "delete"}, Starts: map[int32]int64{0: 1}},
			want: []string{"retention.ms=1000 (want -1: events older than that are deleted)", "partition 0: log start offset 1, want 0 (offsets 0..0 were deleted)"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := tt.give.Problems()
			if strings.Join(got, "|") != strings.Join(tt.want, "|") || tt.give.Replayable() != (len(tt.want) == 0) {
				t.Fatalf("Problems = %q, want %q", got, tt.want)
			}
		})
	}
}

// TestWatcher: a topic that loses its first records, then gets a finite
// retention, is reported by CheckReplayable, logged at ERROR once per
// change (not once per check) and sets the gauge to 0.
func TestWatcher(t *testing.T) {
	brokers := testenv.KafkaBrokers(t)
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	ctx := context.Background()
	name := testenv.Name("watch")
	if _, _, err := Provision(ctx, adm, Spec{Name: name, Partitions: 2}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _, _ = adm.DeleteTopics(context.Background(), name) })
	for i := range 5 {
		if err := cl.ProduceSync(ctx, &kgo.Record{Topic: name, Partition: 1, Key: []byte("k"), Value: []byte{byte(i)}}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	var logs bytes.Buffer
	w, err := NewWatcher(WatchConfig{Topic: name, Component: "test"}, slog.New(slog.NewTextHandler(&logs, nil)), nil)
	if err != nil {
		t.Fatal(err)
	}
	errorLines := func() int { return strings.Count(logs.String(), "level=ERROR") }

	w.check(ctx, adm)
	if errorLines() != 0 || gaugeValue(t, w) != 1 {
		t.Fatalf("fresh topic: gauge %v, logs %s", gaugeValue(t, w), logs.String())
	}

	var o kadm.Offsets
	o.Add(kadm.Offset{Topic: name, Partition: 1, At: 2})
	if resp, err := adm.DeleteRecords(ctx, o); err != nil || resp.Error() != nil {
		t.Fatalf("delete records: %v %v", err, resp.Error())
	}
	r, err := CheckReplayable(ctx, adm, name)
	if err != nil {
		t.Fatal(err)
	}
	if r.Replayable() || r.Starts[1] != 2 {
		t.Fatalf("after DeleteRecords: starts %v, problems %v", r.Starts, r.Problems())
	}
	w.check(ctx, adm)
	w.check(ctx, adm)
	if errorLines() != 1 || gaugeValue(t, w) != 0 || !strings.Contains(logs.String(), "partition 1: log start offset 2") {
		t.Fatalf("after DeleteRecords, two checks: %d ERROR lines (want 1), gauge %v; logs %s", errorLines(), gaugeValue(t, w), logs.String())
	}

	ms := "3600000"
	if _, err := adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{{Op: kadm.SetConfig, Name: "retention.ms", Value: &ms}}, name); err != nil {
		t.Fatal(err)
	}
	w.check(ctx, adm)
	if errorLines() != 2 || !strings.Contains(logs.String(), "retention.ms=3600000") {
		t.Fatalf("after the retention change: %d ERROR lines (want 2); logs %s", errorLines(), logs.String())
	}
}

func gaugeValue(t testing.TB, w *Watcher) float64 {
	t.Helper()
	var m dto.Metric
	if err := w.gauge.Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetGauge().GetValue()
}
