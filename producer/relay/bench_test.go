package relay

import (
	"context"
	"fmt"
	"os/exec"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// pgRecvLogical is the Debian path of PostgreSQL 15's pg_recvlogical.
const pgRecvLogical = "/usr/lib/postgresql/15/bin/pg_recvlogical"

// BenchmarkRelayThroughput measures the WAL relay on a large outbox
// (52,000 events in 52 transactions) beside its two ceilings, measured in
// the same run on the same data:
//   - kafka: raw franz-go produce of the same records (key, value, headers)
//     to a fresh topic with the relay's producer settings;
//   - wal: pg_recvlogical reading the same WAL with pgoutput to /dev/null up
//     to the end LSN.
//
// It reports events/s of each and relay/min(ceilings). Run it once:
//
//	go test ./producer/relay/ -run '^$' -bench RelayThroughput -benchtime=1x
func BenchmarkRelayThroughput(b *testing.B) {
	const orders, perTx = 26000, 1000 // × 2 events
	const events = orders * 2
	e := newBenchEnv(b)
	ctx := context.Background()

	// Create publication and slot by starting the relay once, then stop it.
	cfg := e.config()
	cfg.MaxInFlight = 20000
	r, err := New(cfg)
	if err != nil {
		b.Fatal(err)
	}
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- r.Run(rctx) }()
	waitState(b, r, StateStreaming)
	cancel()
	<-done
	recvSlot := e.slot + "_recv"
	if _, err := e.pool.Exec(ctx, `SELECT pg_create_logical_replication_slot($1, 'pgoutput')`, recvSlot); err != nil {
		b.Fatal(err)
	}
	for i := 0; i < orders/perTx; i++ {
		if err := insertOrders(ctx, e.pool, "bench", i*perTx+1, (i+1)*perTx, 2); err != nil {
			b.Fatal(err)
		}
	}
	var endLSN string
	if err := e.pool.QueryRow(ctx, `SELECT pg_current_wal_lsn()::text`).Scan(&endLSN); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()

	// (a) the relay, from start to the last record acked.
	r, err = New(cfg)
	if err != nil {
		b.Fatal(err)
	}
	rctx, cancel = context.WithCancel(ctx)
	begin := time.Now()
	go func() { done <- r.Run(rctx) }()
	var streaming time.Time
	for r.Stats().Published < events {
		if streaming.IsZero() && r.State() == StateStreaming {
			streaming = time.Now()
		}
		select {
		case err := <-done:
			b.Fatalf("relay stopped: %v", err)
		case <-time.After(5 * time.Millisecond):
		}
	}
	relaySecs := time.Since(begin).Seconds()
	streamSecs := time.Since(streaming).Seconds()
	cancel()
	<-done

	// (b) raw produce of the same records.
	rows, err := e.pool.Query(ctx, `SELECT id, event_id::text, aggregate_id, aggregate_version, event_type, occurred_at,
		coalesce(traceparent, ''), envelope::text FROM outbox ORDER BY id`)
	if err != nil {
		b.Fatal(err)
	}
	evs, ids, err := scanEvents(rows)
	if err != nil {
		b.Fatal(err)
	}
	rawTopic := e.topic + "_raw"
	adm := kadm.NewClient(e.kafka)
	if _, err := adm.CreateTopic(ctx, testPartitions, 1, nil, rawTopic); err != nil {
		b.Fatal(err)
	}
	defer adm.DeleteTopics(context.Background(), rawTopic)
	recs := make([]*kgo.Record, len(evs))
	for i, ev := range evs {
		ev.pos = Position{Mode: ModeWAL, Major: 1, Minor: uint64(ids[i])}
		recs[i] = ev.record(rawTopic)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(e.brokers...), kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.ProducerLinger(5*time.Millisecond), kgo.ProducerBatchMaxBytes(1<<20),
		kgo.ProducerBatchCompression(kgo.Lz4Compression(), kgo.NoCompression()), kgo.MaxBufferedRecords(20001))
	if err != nil {
		b.Fatal(err)
	}
	defer cl.Close()
	if err := cl.ProduceSync(ctx, recs[0]).FirstErr(); err != nil { // metadata warm-up, as the relay's start does
		b.Fatal(err)
	}
	begin = time.Now()
	for _, rec := range recs[1:] {
		cl.Produce(ctx, rec, func(_ *kgo.Record, err error) {
			if err != nil {
				b.Error(err)
			}
		})
	}
	if err := cl.Flush(ctx); err != nil {
		b.Fatal(err)
	}
	kafkaSecs := time.Since(begin).Seconds()

	// (c) pg_recvlogical over the same WAL.
	begin = time.Now()
	cmd := exec.CommandContext(ctx, pgRecvLogical, "-d", e.pgURL, "--slot", recvSlot, "--start", "--no-loop",
		"-o", "proto_version=1", "-o", "publication_names="+DefaultPublication, "-E", endLSN, "-f", "/dev/null")
	if out, err := cmd.CombinedOutput(); err != nil {
		b.Fatalf("pg_recvlogical: %v\n%s", err, out)
	}
	walSecs := time.Since(begin).Seconds()

	relay, withStart, kafka, wal := float64(events)/streamSecs, float64(events)/relaySecs, float64(len(recs)-1)/kafkaSecs, float64(events)/walSecs
	ceiling := min(kafka, wal)
	b.ReportMetric(relay, "relay-events/s")
	b.ReportMetric(kafka, "kafka-events/s")
	b.ReportMetric(wal, "wal-events/s")
	b.ReportMetric(relay/ceiling, "relay/ceiling")
	fmt.Printf("relay %.0f events/s streaming (%.0f events/s incl. %.2fs start) | raw franz-go produce %.0f events/s | pg_recvlogical %.0f events/s | relay/min(ceilings) = %.0f%%\n",
		relay, withStart, relaySecs-streamSecs, kafka, wal, 100*relay/ceiling)
}

func waitState(tb testing.TB, r *Relay, s State) {
	tb.Helper()
	deadline := time.Now().Add(time.Minute)
	for r.State() != s {
		if time.Now().After(deadline) {
			tb.Fatalf("relay not %s after a minute", s)
		}
		time.Sleep(10 * time.Millisecond) // polling a condition with a deadline
	}
}

// newBenchEnv is newEnv for a benchmark.
func newBenchEnv(b *testing.B) *env { return newEnvTB(b) }
