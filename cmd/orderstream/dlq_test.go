package main

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/orderstream/orderstream/consumers"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
)

// dlqRecord is what the runtime writes for a poison record.
func dlqRecord(dlqTopic, source string, p int32, off int64) *kgo.Record {
	h := func(k, v string) kgo.RecordHeader { return kgo.RecordHeader{Key: k, Value: []byte(v)} }
	return &kgo.Record{Topic: dlqTopic, Key: []byte("order-1"), Value: []byte(`{"bad":true}`), Headers: []kgo.RecordHeader{
		h("ce_id", "evt-1"), h("ce_type", "order.paid"),
		h(consumers.HeaderDLQError, "invalid event: envelope"), h(consumers.HeaderDLQKind, "decode"),
		h(consumers.HeaderDLQSourceTopic, source), h(consumers.HeaderDLQSourcePartition, strconv.Itoa(int(p))),
		h(consumers.HeaderDLQSourceOffset, strconv.FormatInt(off, 10)), h(consumers.HeaderDLQAttempts, "1"),
		h(consumers.HeaderDLQFirstFailure, "2026-01-02T03:04:05Z"),
	}}
}

func TestDLQListAndReplayOnce(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(2, "orders"), kfake.SeedTopics(1, "orders.dlq"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	brokers := c.ListenAddrs()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := cl.ProduceSync(ctx, dlqRecord("orders.dlq", "orders", 1, 42), dlqRecord("orders.dlq", "orders", 1, 43)).FirstErr(); err != nil {
		t.Fatal(err)
	}
	g := &globals{brokers: brokers, topic: "orders", log: slog.New(slog.NewTextHandler(io.Discard, nil))}

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
	if !strings.Contains(out, `"source_offset":42`) || !strings.Contains(out, `"source_offset":43`) || !strings.Contains(out, `"event_id":"evt-1"`) {
		t.Errorf("dlq list --json = %s", out)
	}
	if out := run("dlq", "list"); !strings.Contains(out, "orders/1@42") || !strings.Contains(out, "2 record(s) in orders.dlq") {
		t.Errorf("dlq list = %s", out)
	}
	if out := run("dlq", "replay", "--dry-run"); !strings.Contains(out, "would re-drive 2 record(s)") {
		t.Errorf("dry run = %s", out)
	}
	n, err := replayDLQ(ctx, g, "orders.dlq", "redrive", false, io.Discard)
	if err != nil || n != 2 {
		t.Fatalf("replay = %d, %v; want 2", n, err)
	}
	n, err = replayDLQ(ctx, g, "orders.dlq", "redrive", false, io.Discard)
	if err != nil || n != 0 {
		t.Fatalf("second replay = %d, %v; want 0 (each record re-driven once)", n, err)
	}
	// The re-driven records are the originals, on their source partition.
	rd, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumeTopics("orders"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer rd.Close()
	var got []*kgo.Record
	for len(got) < 2 {
		fs := rd.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("read back: %d of 2", len(got))
		}
		got = append(got, fs.Records()...)
	}
	for _, r := range got {
		if r.Partition != 1 || string(r.Value) != `{"bad":true}` || len(r.Headers) != 2 || r.Headers[0].Key != "ce_id" {
			t.Errorf("re-driven record = partition %d value %s headers %v", r.Partition, r.Value, r.Headers)
		}
	}
}
