package relay

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/orderstream/orderstream/producer/command"
	"github.com/orderstream/orderstream/producer/order"
	"github.com/orderstream/orderstream/producer/store"
	"github.com/orderstream/orderstream/producer/topic"
	"github.com/orderstream/orderstream/schemas"
	"github.com/shopspring/decimal"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// placeSales places and pays n sales through the real write side (command
// handler, repository, schema validation), from 4 goroutines.
func placeSales(t *testing.T, e *env, prefix string, n int) {
	t.Helper()
	v, err := schemas.NewValidator()
	if err != nil {
		t.Fatal(err)
	}
	h := command.NewHandler(store.NewRepository(e.pool, v), store.IsConflict)
	at := time.Date(2011, 3, 4, 10, 30, 0, 0, time.UTC)
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < n; i += 4 {
				num := fmt.Sprintf("%s%05d", prefix, i)
				in := order.PlaceInput{Number: num, Kind: schemas.KindSale, CustomerID: "17850", Country: "United Kingdom",
					Currency: "GBP", PlacedAt: at, Lines: []schemas.Line{
						{StockCode: "85123A", Description: "WHITE HANGING HEART T-LIGHT HOLDER", Quantity: int64(i%7 + 1),
							UnitPrice: schemas.Money{Amount: decimal.RequireFromString("2.55"), Currency: "GBP"}},
					}}
				id := uuid.NewSHA1(uuid.NameSpaceOID, []byte(num)).String()
				err := h.Place(context.Background(), id, in, func(o *order.Order) error {
					return o.Pay(at, o.State().Total, "pay-"+num)
				}, schemas.Metadata{Traceparent: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"})
				if err != nil {
					errs <- err
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

// TestEveryOutboxRowOnce: rows written before the first start (backfill) and
// while streaming, through the real write side, are each in Kafka exactly
// once, per order in version order, with the stored envelope as value and
// the documented headers.
func TestEveryOutboxRowOnce(t *testing.T) {
	e := newEnv(t)
	placeSales(t, e, "A", 100) // before the slot exists: backfilled
	run := e.start(t, e.config())
	// Wait until the slot exists and the backfill is done, so the B rows are
	// committed after the slot's consistent point and come through it.
	waitState(t, run.r, StateStreaming)
	placeSales(t, e, "B", 200) // streamed
	e.waitRecords(t, 600)
	// franz-go's client metrics (kprom) of the producer, while it runs;
	// its hook counts a batch after the broker's answer was handled, a
	// moment after the records are readable.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		got := counterSum(t, run.r, "orderstream_relay_kafka_produce_records_total")
		if got >= 600 {
			break
		}
		if time.Now().After(deadline) {
			t.Errorf("kafka produce_records_total = %v, want ≥ 600", got)
			break
		}
	}
	if err := run.shutdown(t); err != nil {
		t.Fatal(err)
	}
	events, dups := e.verify(t)
	if events != 600 || dups != 0 {
		t.Fatalf("events %d duplicates %d, want 600 and 0", events, dups)
	}
	if got := run.r.Stats(); got.Published != 600 {
		t.Errorf("published metric = %d, want 600", got.Published)
	}

	// Record shape: value byte for byte, headers.
	var id, envelope, typ, aggID string
	var version int64
	var schemaVersion int
	err := e.pool.QueryRow(context.Background(), `SELECT event_id::text, envelope::text, event_type, aggregate_id, aggregate_version, schema_version
		FROM outbox ORDER BY id DESC LIMIT 1`).Scan(&id, &envelope, &typ, &aggID, &version, &schemaVersion)
	if err != nil {
		t.Fatal(err)
	}
	var got *record
	for _, r := range e.readTopic(t)[aggID] {
		if r.eventID == id {
			got = &r
		}
	}
	if got == nil {
		t.Fatalf("event %s not found under key %s", id, aggID)
	}
	if string(got.value) != envelope {
		t.Errorf("value differs from outbox.envelope:\n got %s\nwant %s", got.value, envelope)
	}
	want := map[string]string{"ce_id": id, "ce_type": typ, "ce_source": "/orderstream/producer", "ce_specversion": "1.0",
		"ce_subject": aggID, "content-type": "application/json", "aggregate_version": fmt.Sprint(version),
		"traceparent":    "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
		"schema_version": fmt.Sprint(schemaVersion), "ce_dataschema": schemas.DataSchema(typ, schemaVersion)}
	if schemaVersion != schemas.CurrentVersion {
		t.Errorf("outbox schema_version = %d, want %d (the write side's default)", schemaVersion, schemas.CurrentVersion)
	}
	for k, v := range want {
		if got.headers[k] != v {
			t.Errorf("header %s = %q, want %q", k, got.headers[k], v)
		}
	}
	if _, err := time.Parse(time.RFC3339, got.headers["ce_time"]); err != nil {
		t.Errorf("ce_time %q: %v", got.headers["ce_time"], err)
	}
	if pos, err := ParsePosition(got.headers[HeaderPosition]); err != nil || pos.Mode != ModeWAL || pos.Major == 0 {
		t.Errorf("relay_position %q: %+v %v, want a streamed WAL position", got.headers[HeaderPosition], pos, err)
	}

	// A restart relays nothing twice and the slot does not move backwards.
	run2 := e.start(t, e.config())
	placeSales(t, e, "C", 10)
	e.waitRecords(t, 620)
	if err := run2.shutdown(t); err != nil {
		t.Fatal(err)
	}
	if events, dups := e.verify(t); events != 620 || dups != 0 {
		t.Fatalf("after restart: events %d duplicates %d, want 620 and 0", events, dups)
	}
}

// TestHugeTransactionBoundedMemory: one transaction of 20,002 events is
// relayed while never more than MaxInFlight events, and never more than
// MaxInFlightBytes of them, are in flight; each run makes the other bound
// the one that binds.
func TestHugeTransactionBoundedMemory(t *testing.T) {
	for _, c := range []struct {
		name   string
		events int
		bytes  int64
	}{{"events", 500, DefaultMaxInFlightBytes}, {"bytes", 5000, 64 << 10}} {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv(t)
			var peak, peakBytes atomic.Int64
			raise := func(v *atomic.Int64, n int64) {
				for p := v.Load(); n > p && !v.CompareAndSwap(p, n); p = v.Load() {
				}
			}
			cfg := e.config()
			cfg.MaxInFlight, cfg.MaxInFlightBytes = c.events, c.bytes
			run := e.start(t, cfg, WithInFlightHook(func(n int, b int64) {
				raise(&peak, int64(n))
				raise(&peakBytes, b)
			}))
			// Wait for streaming so the transaction comes through the slot, not the backfill.
			deadline := time.Now().Add(time.Minute)
			for run.r.State() != StateStreaming {
				if time.Now().After(deadline) {
					t.Fatal("relay not streaming after a minute")
				}
				time.Sleep(20 * time.Millisecond) // polling a condition with a deadline
			}
			if err := insertOrders(context.Background(), e.pool, "big", 1, 10001, 2); err != nil {
				t.Fatal(err)
			}
			e.waitRecords(t, 20002)
			if err := run.shutdown(t); err != nil {
				t.Fatal(err)
			}
			events, dups := e.verify(t)
			if events != 20002 || dups != 0 {
				t.Fatalf("events %d duplicates %d, want 20002 and 0", events, dups)
			}
			p, pb := peak.Load(), peakBytes.Load()
			t.Logf("peak in flight %d events (bound %d), %d bytes (bound %d)", p, c.events, pb, c.bytes)
			if p > int64(c.events) || p == 0 || pb > c.bytes || pb == 0 {
				t.Fatalf("peak in flight %d events, %d bytes: want 1..%d and 1..%d", p, pb, c.events, c.bytes)
			}
			// The binding bound is reached: the test would not notice it
			// being ignored otherwise.
			if c.name == "events" && p < int64(c.events)/2 || c.name == "bytes" && pb < c.bytes/2 {
				t.Fatalf("peak in flight %d events, %d bytes: the %s bound was never approached", p, pb, c.name)
			}
		})
	}
}

// TestCrashRestarts: 50,000 events written in many transactions while the
// relay, a separate process, is killed with SIGKILL at 5 random moments and
// restarted. Every event ends up in Kafka, per order in version order.
func TestCrashRestarts(t *testing.T) {
	if testing.Short() {
		t.Skip("long: 50,000 events with 5 SIGKILLs")
	}
	e := newEnv(t)
	const txs, ordersPerTx = 100, 250 // × 2 events = 50,000
	writerDone := make(chan error, 1)
	go func() {
		tick := time.NewTicker(60 * time.Millisecond) // spreads the writes over ~6 s so kills land mid-stream
		defer tick.Stop()
		for i := 0; i < txs; i++ {
			if err := insertOrders(context.Background(), e.pool, "crash", i*ordersPerTx+1, (i+1)*ordersPerTx, 2); err != nil {
				writerDone <- err
				return
			}
			<-tick.C
		}
		writerDone <- nil
	}()
	c := e.startChild(t)
	skipping := 0
	for i := 0; i < 5; i++ {
		time.Sleep(time.Duration(300+rand.IntN(1200)) * time.Millisecond) // a random moment to crash at
		c.kill(t)
		if strings.Contains(c.logs.String(), "skipping events already in their partition") {
			skipping++
		}
		t.Logf("kill %d: SIGKILL after %q", i+1, lastLine(c.logs.String()))
		c = e.startChild(t)
	}
	if err := <-writerDone; err != nil {
		t.Fatal(err)
	}
	e.waitRecords(t, txs*ordersPerTx*2)
	c.waitLog(t, `"msg":"streaming"`)
	// Let the last child confirm, then stop it cleanly.
	_ = c.cmd.Process.Signal(syscall.SIGTERM)
	if code := c.exitCode(t); code != 0 {
		t.Fatalf("relay exit %d after SIGTERM; logs:\n%s", code, c.logs.String())
	}
	events, dups := e.verify(t)
	if events != txs*ordersPerTx*2 {
		t.Fatalf("outbox holds %d events, want %d", events, txs*ordersPerTx*2)
	}
	if strings.Contains(c.logs.String(), "skipping events already in their partition") {
		skipping++
	}
	t.Logf("50,000 events, 5 SIGKILLs: %d duplicate records in Kafka (%.3f%%); %d of 6 runs skipped events already published",
		dups, 100*float64(dups)/float64(events), skipping)
}

func lastLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		s = s[i+1:]
	}
	if len(s) > 160 {
		s = s[:160]
	}
	return s
}

// TestStandbyTakesOver: two relays on one slot; one is active, the other
// waits; killing the active one lets the standby continue with nothing lost.
func TestStandbyTakesOver(t *testing.T) {
	e := newEnv(t)
	a := e.startChild(t)
	a.waitLog(t, `"msg":"streaming"`)
	b := e.startChild(t)
	b.waitLog(t, "standby")
	if err := insertOrders(context.Background(), e.pool, "sb1", 1, 1000, 2); err != nil {
		t.Fatal(err)
	}
	e.waitRecords(t, 2000)
	a.kill(t)
	if err := insertOrders(context.Background(), e.pool, "sb2", 1, 1000, 2); err != nil {
		t.Fatal(err)
	}
	b.waitLog(t, "relay lock acquired: active")
	e.waitRecords(t, 4000)
	b.waitLog(t, `"msg":"streaming"`)
	events, dups := e.verify(t)
	if events != 4000 {
		t.Fatalf("events %d, want 4000", events)
	}
	t.Logf("takeover: %d duplicates", dups)
}

// TestSlotLossDetected: a slot dropped (or dropped and recreated) behind the
// relay's back makes it stop with ErrSlotLost instead of resuming from now.
func TestSlotLossDetected(t *testing.T) {
	e := newEnv(t)
	run := e.start(t, e.config())
	if err := insertOrders(context.Background(), e.pool, "s", 1, 50, 2); err != nil {
		t.Fatal(err)
	}
	e.waitRecords(t, 100)
	if err := run.shutdown(t); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	// The walsender of the stopped relay may outlive its connection briefly.
	deadline := time.Now().Add(time.Minute)
	for active := true; active; {
		if err := e.pool.QueryRow(ctx, `SELECT active FROM pg_replication_slots WHERE slot_name = $1`, e.slot).Scan(&active); err != nil {
			t.Fatal(err)
		}
		if active && time.Now().After(deadline) {
			t.Fatal("slot still active a minute after the relay stopped")
		}
		time.Sleep(20 * time.Millisecond) // polling a condition with a deadline
	}
	if _, err := e.pool.Exec(ctx, `SELECT pg_drop_replication_slot($1)`, e.slot); err != nil {
		t.Fatal(err)
	}
	if err := insertOrders(ctx, e.pool, "gap", 1, 5, 2); err != nil { // committed while no slot exists
		t.Fatal(err)
	}

	// Dropped: in process, the error is ErrSlotLost.
	err := e.start(t, e.config()).shutdownAfterExit(t)
	if !errors.Is(err, ErrSlotLost) || !strings.Contains(err.Error(), "does not exist") {
		t.Fatalf("after drop: err = %v, want ErrSlotLost naming the missing slot", err)
	}

	// Recreated ahead: as a process, exit non-zero with the loud message.
	if _, err := e.pool.Exec(ctx, `SELECT pg_create_logical_replication_slot($1, 'pgoutput')`, e.slot); err != nil {
		t.Fatal(err)
	}
	c := e.startChild(t)
	if code := c.exitCode(t); code == 0 {
		t.Fatalf("relay exited 0 on a recreated slot; logs:\n%s", c.logs.String())
	}
	if logs := c.logs.String(); !strings.Contains(logs, "replication slot lost or moved") || !strings.Contains(logs, "AHEAD") {
		t.Fatalf("logs lack the slot-loss error:\n%s", logs)
	}

	// Re-baselining is deliberate: --accept-slot-reset starts, and says the gap is not relayed.
	cfg := e.config()
	cfg.AcceptSlotReset = true
	run = e.start(t, cfg)
	if err := insertOrders(ctx, e.pool, "after", 1, 5, 2); err != nil {
		t.Fatal(err)
	}
	e.waitRecords(t, 110)
	if err := run.shutdown(t); err != nil {
		t.Fatal(err)
	}
}

// shutdownAfterExit waits for Run to return on its own.
func (run *running) shutdownAfterExit(t *testing.T) error {
	t.Helper()
	select {
	case err := <-run.done:
		run.done <- err
		return err
	case <-time.After(childStopTimeout):
		t.Fatal("relay did not exit")
		return nil
	}
}

// TestPollOutOfOrderCommit: tx A inserts first but commits after tx B. The
// poll relay must not skip A's row (reading by id would: the cursor would
// pass A's id while A was invisible).
func TestPollOutOfOrderCommit(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	cfg := e.config()
	cfg.Mode = ModePoll
	cfg.setDefaults()
	r, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	r.pool = e.pool
	adm := kadm.NewClient(e.kafka)
	if _, _, err := topic.Provision(ctx, adm, topic.Spec{Name: e.topic, Partitions: testPartitions}); err != nil {
		t.Fatal(err)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(e.brokers...), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	pub := newPublisher(cl, e.topic, testPartitions, 100, DefaultMaxInFlightBytes, map[int32]Position{}, r.m, r.log)

	txA, err := e.pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer txA.Rollback(ctx)
	if _, err := txA.Exec(ctx, `INSERT INTO outbox (event_id, aggregate_type, aggregate_id, aggregate_version, event_type, schema_version, occurred_at, envelope)
		VALUES (gen_random_uuid(), 'order', 'A', 1, 'order.placed', 1, now(), '{"a":1}')`); err != nil {
		t.Fatal(err)
	}
	if err := insertOrders(ctx, e.pool, "B", 1, 1, 1); err != nil { // tx B: later id, commits first
		t.Fatal(err)
	}
	n, cur, err := r.pollOnce(ctx, pub, pollCursor{})
	if err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Fatalf("while A is open the poll read %d rows (cursor %+v), want 0: B must wait behind the watermark", n, cur)
	}
	if err := txA.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	// Transactions of other tests on the shared server may hold the
	// watermark a moment longer: poll until both rows came (or a deadline).
	read := 0
	for deadline := time.Now().Add(30 * time.Second); read < 2 && time.Now().Before(deadline); {
		n, cur, err = r.pollOnce(ctx, pub, cur)
		if err != nil {
			t.Fatal(err)
		}
		read += n
		if n == 0 {
			time.Sleep(20 * time.Millisecond) // polling a condition with a deadline
		}
	}
	if read != 2 {
		t.Fatalf("after A committed the polls read %d rows, want 2 (A and B)", read)
	}
	stored, err := r.loadPollCursor(ctx)
	if err != nil || stored != cur {
		t.Fatalf("stored cursor %+v (%v), want %+v", stored, err, cur)
	}
	byOrder := e.readTopic(t)
	if len(byOrder["A"]) != 1 || len(byOrder["B-1"]) != 1 {
		t.Fatalf("topic holds A×%d, B×%d; want each once", len(byOrder["A"]), len(byOrder["B-1"]))
	}
	if pos, err := ParsePosition(byOrder["A"][0].headers[HeaderPosition]); err != nil || pos.Mode != ModePoll {
		t.Fatalf("A's relay_position %q: %v", byOrder["A"][0].headers[HeaderPosition], err)
	}
}

// TestPollModeRelaysEverything runs the poll relay end to end.
func TestPollModeRelaysEverything(t *testing.T) {
	e := newEnv(t)
	cfg := e.config()
	cfg.Mode = ModePoll
	run := e.start(t, cfg)
	for i := 0; i < 5; i++ {
		if err := insertOrders(context.Background(), e.pool, fmt.Sprintf("p%d", i), 1, 400, 2); err != nil {
			t.Fatal(err)
		}
	}
	e.waitRecords(t, 4000)
	if err := run.shutdown(t); err != nil {
		t.Fatal(err)
	}
	// A restart skips nothing and repeats nothing.
	run = e.start(t, cfg)
	if err := insertOrders(context.Background(), e.pool, "p9", 1, 10, 2); err != nil {
		t.Fatal(err)
	}
	e.waitRecords(t, 4020)
	if err := run.shutdown(t); err != nil {
		t.Fatal(err)
	}
	if events, dups := e.verify(t); events != 4020 || dups != 0 {
		t.Fatalf("events %d duplicates %d, want 4020 and 0", events, dups)
	}
}

// TestTopicRefusal: a topic with finite retention or compaction is refused
// (a replay from zero would miss events) unless explicitly allowed.
// waitTopicVisible waits (up to 30 s) until the brokers' metadata lists
// topic: CreateTopic returns when the controller created it, a moment before
// every broker's metadata has it.
func waitTopicVisible(t *testing.T, adm *kadm.Client, topic string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		td, err := adm.ListTopics(context.Background(), topic)
		if err == nil && td.Has(topic) && td[topic].Err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("topic %s not in the metadata after 30 s (last error %v)", topic, err)
		}
		time.Sleep(20 * time.Millisecond) // polling a condition with a deadline
	}
}

func TestTopicRefusal(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	adm := kadm.NewClient(e.kafka)
	tests := []struct {
		name    string
		configs map[string]*string
		allow   bool
		wantErr bool
	}{
		{name: "finite retention.ms", configs: map[string]*string{"retention.ms": ptr("3600000")}, wantErr: true},
		{name: "finite retention.bytes", configs: map[string]*string{"retention.ms": ptr("-1"), "retention.bytes": ptr("1000000")}, wantErr: true},
		{name: "compaction", configs: map[string]*string{"retention.ms": ptr("-1"), "retention.bytes": ptr("-1"), "cleanup.policy": ptr("compact")}, wantErr: true},
		{name: "finite but allowed", configs: map[string]*string{"retention.ms": ptr("3600000")}, allow: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			name := e.topic + "_" + strings.ReplaceAll(tt.name, " ", "_")
			if _, err := adm.CreateTopic(ctx, 1, 1, tt.configs, name); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _, _ = adm.DeleteTopics(context.Background(), name) })
			waitTopicVisible(t, adm, name)
			cfg := e.config()
			cfg.Topic, cfg.CreateTopic, cfg.AllowFiniteRetention = name, false, tt.allow
			cfg.Slot = uniqueSlot(e.slot)
			run := e.start(t, cfg)
			if tt.wantErr {
				err := run.shutdownAfterExit(t)
				if !errors.Is(err, topic.ErrNotReplayable) {
					t.Fatalf("err = %v, want ErrNotReplayable", err)
				}
				// Provision refuses the same topic.
				if _, _, err := topic.Provision(ctx, adm, topic.Spec{Name: name, Partitions: 1}); !errors.Is(err, topic.ErrNotReplayable) {
					t.Fatalf("Provision: err = %v, want ErrNotReplayable", err)
				}
				return
			}
			deadline := time.Now().Add(time.Minute)
			for run.r.State() != StateStreaming {
				if time.Now().After(deadline) {
					t.Fatal("relay not streaming")
				}
				time.Sleep(20 * time.Millisecond) // polling a condition with a deadline
			}
			if err := run.shutdown(t); err != nil {
				t.Fatal(err)
			}
		})
	}
	// Provision: partition count mismatch on an existing topic.
	if _, _, err := topic.Provision(ctx, adm, topic.Spec{Name: e.topic + "_parts", Partitions: 3}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _, _ = adm.DeleteTopics(context.Background(), e.topic+"_parts") })
	if _, created, err := topic.Provision(ctx, adm, topic.Spec{Name: e.topic + "_parts", Partitions: 3}); err != nil || created {
		t.Fatalf("second Provision: created %v err %v, want an idempotent success", created, err)
	}
	if _, _, err := topic.Provision(ctx, adm, topic.Spec{Name: e.topic + "_parts", Partitions: 4}); !errors.Is(err, topic.ErrPartitions) {
		t.Fatalf("Provision with 4 partitions: err = %v, want ErrPartitions", err)
	}
}

func ptr(s string) *string { return &s }

var slotSeq atomic.Int64

func uniqueSlot(base string) string { return fmt.Sprintf("%s_%d", base, slotSeq.Add(1)) }

// TestPurgeDeletesOnlyRelayedOldRows: rows older than the retention and
// already relayed (recorded more than the safety margin before the last
// confirmed commit) are deleted; recent rows stay.
func TestPurgeDeletesOnlyRelayedOldRows(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	if err := insertOrders(ctx, e.pool, "old", 1, 50, 2); err != nil {
		t.Fatal(err)
	}
	if _, err := e.pool.Exec(ctx, `UPDATE outbox SET recorded_at = now() - interval '3 hours'`); err != nil {
		t.Fatal(err)
	}
	cfg := e.config()
	run := e.start(t, cfg)
	if err := insertOrders(ctx, e.pool, "new", 1, 10, 2); err != nil {
		t.Fatal(err)
	}
	e.waitRecords(t, 120)
	if err := run.shutdown(t); err != nil {
		t.Fatal(err)
	}
	cfg.OutboxRetention = time.Second
	cfg.setDefaults()
	r, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	r.pool = e.pool
	n, err := r.purge(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var left int
	if err := e.pool.QueryRow(ctx, `SELECT count(*) FROM outbox`).Scan(&left); err != nil {
		t.Fatal(err)
	}
	if n != 100 || left != 20 {
		t.Fatalf("purged %d, left %d; want 100 purged (old, relayed) and 20 left (recent)", n, left)
	}
}
