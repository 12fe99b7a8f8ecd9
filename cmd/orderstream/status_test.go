package main

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/orderstream/orderstream/internal/testenv"
	"github.com/orderstream/orderstream/producer/topic"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// TestStatusTopicReplayable: `orderstream status` reports a topic that can
// no longer be replayed from offset zero — first records deleted, then a
// finite retention — with a problem naming the topic and the reason, and
// exits 1; a replayable topic gets no such problem.
func TestStatusTopicReplayable(t *testing.T) {
	brokers := testenv.KafkaBrokers(t)
	chAddr := testenv.ClickHouseAddr(t)
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	name := testenv.Name("status")
	if _, _, err := topic.Provision(ctx, adm, topic.Spec{Name: name, Partitions: 2}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _, _ = adm.DeleteTopics(context.Background(), name) })
	for i := range 4 {
		if err := cl.ProduceSync(ctx, &kgo.Record{Topic: name, Partition: 0, Value: []byte{byte(i)}}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	status := func() (Report, error) {
		t.Helper()
		root := newRootCmd()
		var out bytes.Buffer
		root.SetOut(&out)
		root.SetArgs([]string{"status", "--json", "--relay=false", "--projections", "analytics", "--topic", name,
			"--kafka-brokers", strings.Join(brokers, ","), "--clickhouse-addr", chAddr, "--clickhouse-database", testenv.Name("status")})
		err := root.ExecuteContext(ctx)
		var r Report
		if jerr := json.Unmarshal(out.Bytes(), &r); jerr != nil {
			t.Fatalf("status --json printed %q: %v (exit error %v)", out.String(), jerr, err)
		}
		return r, err
	}
	replayProblem := func(r Report) string {
		for _, p := range r.Problems {
			if strings.Contains(p, "cannot be replayed from offset zero") {
				return p
			}
		}
		return ""
	}

	r, _ := status()
	if p := replayProblem(r); p != "" || !r.Replayable {
		t.Fatalf("replayable topic: replayable %v, problem %q", r.Replayable, p)
	}

	var o kadm.Offsets
	o.Add(kadm.Offset{Topic: name, Partition: 0, At: 2})
	if resp, err := adm.DeleteRecords(ctx, o); err != nil || resp.Error() != nil {
		t.Fatalf("delete records: %v %v", err, resp.Error())
	}
	r, err = status()
	want := "topic " + name + " cannot be replayed from offset zero (a rebuild would miss events): partition 0: log start offset 2, want 0"
	if p := replayProblem(r); !strings.HasPrefix(p, want) || r.Replayable || exitCode(err) != 1 {
		t.Fatalf("after DeleteRecords: exit %d, replayable %v, problem %q; want it to start with %q", exitCode(err), r.Replayable, p, want)
	}

	ms := "86400000"
	if _, err := adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{{Op: kadm.SetConfig, Name: "retention.ms", Value: &ms}}, name); err != nil {
		t.Fatal(err)
	}
	// The broker asked may see the new config a moment later (KRaft
	// metadata propagates to each broker asynchronously).
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		r, err = status()
		p := replayProblem(r)
		if strings.Contains(p, "retention.ms=86400000") && exitCode(err) == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after the retention change: exit %d, problem %q", exitCode(err), p)
		}
	}
}
