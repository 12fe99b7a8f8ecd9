package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/orderstream/orderstream/consumers"
	"github.com/orderstream/orderstream/internal/rebuild"
	"github.com/orderstream/orderstream/internal/testenv"
	"github.com/orderstream/orderstream/internal/testfixture"
	"github.com/orderstream/orderstream/producer/store"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// TestVerifyCommand runs `verify analytics` on real services: an order of
// the write side that the read model lacks is reported by id, in the table
// and in JSON, with exit status 1; once its event is in the topic past the
// daemon group's committed offsets (the group never committed) it is in
// flight and the command exits 0.
func TestVerifyCommand(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	_, modelFlags := analyticsModel(ctx, t) // generation 1 serving, empty
	brokers := testenv.KafkaBrokers(t)
	topicName := testfixture.ProduceTopic(t, brokers, nil)
	const id = "7f1c0a52-0000-4000-8000-00000000000a"
	pgURL := writeSideOf(ctx, t, id)
	run := func(args ...string) (string, int) {
		t.Helper()
		cmd := newRootCmd()
		var out, errOut bytes.Buffer
		cmd.SetArgs(append(append(args, modelFlags...), "--pg-url", pgURL, "--kafka-brokers", strings.Join(brokers, ","),
			"--topic", topicName, "--slot", "verify_test", "--analytics-group", testenv.Name("nogroup"), "--log-level", "error"))
		cmd.SetOut(&out)
		cmd.SetErr(&errOut)
		err := cmd.ExecuteContext(ctx)
		return out.String() + errOut.String(), exitCode(err)
	}

	out, code := run("verify", "analytics")
	if code != 1 || !strings.Contains(out, id+"  missing") {
		t.Fatalf("order missing: exit %d, output\n%s\nwant exit 1 and a row naming %s missing", code, out, id)
	}
	out, code = run("verify", "analytics", "--format", "json")
	var vs []rebuild.Verification
	if err := json.Unmarshal([]byte(out[:strings.LastIndex(out, "]")+1]), &vs); err != nil || code != 1 ||
		len(vs) != 1 || len(vs[0].Drift) != 1 || vs[0].Drift[0].OrderID != id || vs[0].Drift[0].Drift != rebuild.VerdictMissing {
		t.Fatalf("JSON: exit %d, %v, output\n%s\nwant exit 1 and %s missing", code, err, out, id)
	}

	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.DefaultProduceTopic(topicName))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	rec := &kgo.Record{Key: []byte(id), Value: []byte("{}"), Headers: []kgo.RecordHeader{{Key: "aggregate_version", Value: []byte("1")}}}
	if err := cl.ProduceSync(ctx, rec).FirstErr(); err != nil {
		t.Fatal(err)
	}
	if out, code = run("verify", "analytics"); code != 0 || !strings.Contains(out, "1 in flight") {
		t.Fatalf("order in flight: exit %d, output\n%s\nwant exit 0 and 1 in flight", code, out)
	}
	if _, code = run("verify", "everything"); code != 2 {
		t.Fatalf("verify everything: exit %d, want 2 (usage)", code)
	}
}

// writeSideOf is a new write-side database holding order id at version 1
// (placed, total 1, no lines), relayed completely by slot verify_test.
func writeSideOf(ctx context.Context, t *testing.T, id string) (pgURL string) {
	t.Helper()
	pgURL = testenv.NewDatabase(t)
	pool, err := pgxpool.New(ctx, pgURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	if _, err := store.Migrate(ctx, pool, slog.New(slog.DiscardHandler)); err != nil {
		t.Fatal(err)
	}
	_, err = pool.Exec(ctx, `INSERT INTO orders (order_id, order_number, kind, status, country, currency, total, placed_at, version)
		VALUES ($1, '1', 'sale', 'placed', 'UK', 'GBP', 1, now(), 1)`, id)
	if err == nil { // the relay has relayed everything
		_, err = pool.Exec(ctx, `INSERT INTO relay_checkpoint (slot_name, state, confirmed_lsn) VALUES ('verify_test', 'streaming', 'FFFFFFFF/0')`)
	}
	if err != nil {
		t.Fatal(err)
	}
	return pgURL
}

// TestConsumeVerifiesPeriodically: a daemon with --verify-interval exports
// on /metrics the orders it compared and the drift it found: an order of
// the write side that never reached the topic.
func TestConsumeVerifiesPeriodically(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	_, modelFlags := analyticsModel(ctx, t)
	brokers := testenv.KafkaBrokers(t)
	topicName := testfixture.ProduceTopic(t, brokers, nil)
	pgURL := writeSideOf(ctx, t, "7f1c0a52-0000-4000-8000-00000000000b")
	group := testenv.Name("verify")
	t.Cleanup(func() {
		cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
		if err == nil {
			_ = consumers.DeleteGroup(context.Background(), kadm.NewClient(cl), group)
			cl.Close()
		}
	})
	addr := freeAddr(t)
	dctx, stop := context.WithCancel(ctx)
	defer stop()
	root := newRootCmd()
	root.SetOut(io.Discard)
	root.SetArgs(append([]string{"consume", "analytics", "--topic", topicName, "--group", group, "--metrics-addr", addr,
		"--kafka-brokers", strings.Join(brokers, ","), "--pg-url", pgURL, "--slot", "verify_test", "--instance-id", "none",
		"--verify-interval", "200ms", "--log-level", "error"}, modelFlags...))
	done := make(chan error, 1)
	go func() { done <- root.ExecuteContext(dctx) }()
	waitForMetric(t, addr, done, `orderstream_verify_drift_orders{projection="analytics"} 1`)
	waitForMetric(t, addr, done, `orderstream_verify_failures_total{projection="analytics"} 0`)
	stop()
	if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
		t.Fatalf("daemon: %v", err)
	}
}
