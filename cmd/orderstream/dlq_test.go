package main

import (
	"bytes"
	"context"
	"io"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/orderstream/orderstream/consumers"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
)

// dlqRecord is what the runtime writes for a poison record of group
// orderstream-analytics.
func dlqRecord(dlqTopic, source string, p int32, off int64) *kgo.Record {
	h := func(k, v string) kgo.RecordHeader { return kgo.RecordHeader{Key: k, Value: []byte(v)} }
	return &kgo.Record{Topic: dlqTopic, Key: []byte("order-1"), Value: []byte(`{"bad":true}`), Headers: []kgo.RecordHeader{
		h("ce_id", "evt-1"), h("ce_type", "order.paid"),
		h(consumers.HeaderDLQError, "invalid event: envelope"), h(consumers.HeaderDLQKind, "decode"),
		h(consumers.HeaderDLQSourceTopic, source), h(consumers.HeaderDLQSourcePartition, strconv.Itoa(int(p))),
		h(consumers.HeaderDLQSourceOffset, strconv.FormatInt(off, 10)), h(consumers.HeaderDLQAttempts, "1"),
		h(consumers.HeaderDLQFirstFailure, "2026-01-02T03:04:05Z"),
		h(consumers.HeaderDLQGroup, "orderstream-analytics"), h(consumers.HeaderDLQProjection, "analytics"),
	}}
}

// dlq list shows dead letters with their state (re-drive markers are not
// listed); a dry-run re-drive lists the pending ones per group and writes
// nothing, to the events topic least of all.
func TestDLQListAndDryRun(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(2, "orders"), kfake.SeedTopics(1, "orders.dlq"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	brokers := c.ListenAddrs()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := cl.ProduceSync(ctx, dlqRecord("orders.dlq", "orders", 1, 42), dlqRecord("orders.dlq", "orders", 1, 43)).FirstErr(); err != nil {
		t.Fatal(err)
	}

	run := func(args ...string) string {
		t.Helper()
		root := newRootCmd()
		var out bytes.Buffer
		root.SetOut(&out)
		root.SetArgs(append(args, "--kafka-brokers", strings.Join(brokers, ","), "--topic", "orders"))
		if err := root.ExecuteContext(ctx); err != nil {
			t.Fatalf("%v: %v", args, err)
		}
		return out.String()
	}
	out := run("dlq", "list", "--json")
	if !strings.Contains(out, `"source_offset":42`) || !strings.Contains(out, `"source_offset":43`) || !strings.Contains(out, `"event_id":"evt-1"`) ||
		strings.Count(out, `"state":"pending"`) != 2 {
		t.Errorf("dlq list --json = %s", out)
	}
	if out := run("dlq", "replay", "--dry-run"); !strings.Contains(out, "orderstream-analytics: would re-drive 2 record(s)") {
		t.Errorf("dry run = %s", out)
	}
	// A re-drive applied the first one.
	marker := &kgo.Record{Topic: "orders.dlq", Key: []byte("order-1"), Headers: []kgo.RecordHeader{
		{Key: consumers.HeaderDLQKind, Value: []byte(consumers.KindRedriven)},
		{Key: consumers.HeaderDLQGroup, Value: []byte("orderstream-analytics")},
		{Key: consumers.HeaderDLQRedrivenThrough, Value: []byte("0")},
	}}
	if err := cl.ProduceSync(ctx, marker).FirstErr(); err != nil {
		t.Fatal(err)
	}
	if out := run("dlq", "list"); !strings.Contains(out, "orders/1@42") || !strings.Contains(out, "re-driven") ||
		!strings.Contains(out, "2 record(s) in orders.dlq") {
		t.Errorf("dlq list = %s", out)
	}
	if out := run("dlq", "replay", "--dry-run"); !strings.Contains(out, "would re-drive 1 record(s)") || !strings.Contains(out, "@43") {
		t.Errorf("dry run after a partial re-drive = %s", out)
	}
	ends, err := kadm.NewClient(cl).ListEndOffsets(ctx, "orders")
	if err != nil {
		t.Fatal(err)
	}
	ends.Each(func(o kadm.ListedOffset) {
		if o.Offset != 0 {
			t.Errorf("events topic partition %d has %d records: a re-drive wrote to it", o.Partition, o.Offset)
		}
	})
}

// --skip-dead-lettered belongs to shadow rebuilds: in-place is refused as a
// usage error naming the flag, before anything is touched.
func TestReplaySkipDeadLetteredShadowOnly(t *testing.T) {
	root := newRootCmd()
	root.SetOut(io.Discard)
	root.SetErr(io.Discard)
	root.SetArgs([]string{"replay", "analytics", "--mode", "in-place", "--skip-dead-lettered", "--kafka-brokers", "127.0.0.1:1"})
	err := root.Execute()
	if err == nil || exitCode(err) != 2 || !strings.Contains(err.Error(), "--skip-dead-lettered") {
		t.Fatalf("in-place with --skip-dead-lettered: %v (exit %d), want a usage error naming the flag", err, exitCode(err))
	}
}

// TestDLQListMissingTopic: listing a dead-letter topic that does not exist
// says so and what it may mean, not the broker's error for partition -1.
func TestDLQListMissingTopic(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(2, "orders"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	root := newRootCmd()
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetArgs([]string{"dlq", "list", "--kafka-brokers", strings.Join(c.ListenAddrs(), ","), "--topic", "nothing-dead-lettered"})
	err = root.ExecuteContext(ctx)
	if err == nil || !strings.Contains(err.Error(), "dead-letter topic nothing-dead-lettered.dlq does not exist") {
		t.Fatalf("dlq list of a missing topic: %v, want it named as missing", err)
	}
}
