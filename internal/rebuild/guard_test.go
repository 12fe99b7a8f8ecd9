package rebuild

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/orderstream/orderstream/consumers"
	"github.com/orderstream/orderstream/internal/testenv"
	"github.com/orderstream/orderstream/internal/testfixture"
	"github.com/orderstream/orderstream/producer/store"
	"github.com/orderstream/orderstream/producer/topic"
	"github.com/orderstream/orderstream/projections"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// TestShadowGuardLostHistory: with the first records of one partition
// deleted (kadm DeleteRecords; as retention would), a shadow rebuild of each
// read model is refused before the cutover: the error names the partition
// and its log start offset, and the write-side comparison counts exactly the
// orders whose events were cut as missing; the serving generation stays and
// the new one is dropped. With Force the cutover happens and a WARN line
// names what was overridden.
func TestShadowGuardLostHistory(t *testing.T) {
	brokers := testenv.KafkaBrokers(t)
	events := testfixture.RealEvents(t)[:600]
	for _, tc := range models {
		t.Run(tc.name, func(t *testing.T) {
			topicName := testfixture.ProduceTopic(t, brokers, events)
			m := tc.model(t)
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
			defer cancel()
			part, cut, orders := cutHead(t, brokers, topicName, 10)
			t.Logf("deleted offsets 0..%d of partition %d: %d orders", cut-1, part, len(orders))

			cfg := ShadowConfig{Brokers: brokers, Topic: topicName, Group: testenv.Name("rebuild"), Settle: time.Second,
				ProgressInterval: 200 * time.Millisecond, WriteSide: eventsWriteSide(events)}
			_, err := Shadow(ctx, m.p, cfg, testLog(t))
			var ge *GuardError
			if !errors.As(err, &ge) || !errors.Is(err, ErrCutoverRefused) {
				t.Fatalf("Shadow error = %v, want a *GuardError", err)
			}
			t.Logf("refused: %v", err)
			wantStart := fmt.Sprintf("partition %d: log start offset %d, want 0", part, cut)
			if !strings.Contains(err.Error(), wantStart) {
				t.Fatalf("error does not say %q: %v", wantStart, err)
			}
			if ge.WriteSide == nil || ge.WriteSide.Missing != len(orders) || ge.WriteSide.Stale != 0 {
				t.Fatalf("write-side comparison = %+v, want %d missing orders (those cut), 0 stale", ge.WriteSide, len(orders))
			}
			for _, id := range ge.WriteSide.MissingExamples {
				if !orders[id] {
					t.Fatalf("order %s reported missing, but none of its events was cut", id)
				}
			}
			gens, err := m.p.Generations(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if projections.Serving(gens) != 1 || len(projections.Building(gens)) != 0 {
				t.Fatalf("generations after the refused cutover = %v, want 1 serving and nothing building", gens)
			}

			var logged bytes.Buffer // slog handlers serialize their writes
			cfg.Force, cfg.Group = true, testenv.Name("rebuild")
			res, err := Shadow(ctx, m.p, cfg, slog.New(slog.NewTextHandler(io.MultiWriter(&logged, t.Output()), &slog.HandlerOptions{Level: slog.LevelWarn})))
			if err != nil {
				t.Fatalf("forced Shadow: %v", err)
			}
			gens, err = m.p.Generations(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if projections.Serving(gens) != res.Generation || res.Generation == 1 || len(res.Forced) != 2 || !strings.HasPrefix(res.Forced[0], wantStart) {
				t.Fatalf("generations after the forced cutover = %v, want %d serving; overridden %q", gens, res.Generation, res.Forced)
			}
			line := logged.String()
			if !strings.Contains(line, "level=WARN") || !strings.Contains(line, "cutover FORCED") || !strings.Contains(line, wantStart) {
				t.Fatalf("the forced cutover logged %q, want a WARN line naming %q", line, wantStart)
			}
		})
	}
}

// cutHead deletes the first records of a partition of topicName holding at
// least want records: at least want of them, up to the first offset where
// no order has events on both sides of the cut (so that every order is
// either whole or gone, and search, which rejects a payment without its
// order, rebuilds the rest). It returns the partition, the new log start
// offset and the orders cut.
func cutHead(t testing.TB, brokers []string, topicName string, want int64) (int32, int64, map[string]bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	adm := admin(t, brokers)
	starts, ends, err := consumers.TopicOffsets(ctx, adm, topicName)
	if err != nil {
		t.Fatal(err)
	}
	for part, end := range ends {
		if end-starts[part] < 3*want {
			continue
		}
		var keys []string
		err := topic.ReadRange(ctx, brokers, topicName, map[int32]int64{part: 0}, map[int32]int64{part: end},
			func(r *kgo.Record) { keys = append(keys, string(r.Key)) })
		if err != nil {
			t.Fatal(err)
		}
		last := map[string]int{}
		for i, k := range keys {
			last[k] = i
		}
		cut := int(want)
		for ; cut < len(keys); cut++ {
			clean := true
			for _, k := range keys[:cut] {
				if last[k] >= cut {
					clean = false
					break
				}
			}
			if clean {
				break
			}
		}
		orders := map[string]bool{}
		for _, k := range keys[:cut] {
			orders[k] = true
		}
		var o kadm.Offsets
		o.Add(kadm.Offset{Topic: topicName, Partition: part, At: int64(cut)})
		resp, err := adm.DeleteRecords(ctx, o)
		if err == nil {
			err = resp.Error()
		}
		if err != nil {
			t.Fatalf("delete records of partition %d: %v", part, err)
		}
		return part, int64(cut), orders
	}
	t.Fatalf("no partition of %s holds %d records", topicName, 3*want)
	return 0, 0, nil
}

// TestPostgresWriteSide: the write side's versions come from orders.version
// in one snapshot, and only once the relay's checkpoint passed that
// snapshot's WAL position; a relay behind fails the comparison, naming the
// slot. RelayedFacts gives status, total in thousandths and line count.
func TestPostgresWriteSide(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	pool, err := pgxpool.New(ctx, testenv.NewDatabase(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	if _, err := store.Migrate(ctx, pool, testLog(t)); err != nil {
		t.Fatal(err)
	}
	_, err = pool.Exec(ctx, `INSERT INTO orders (order_id, order_number, kind, status, country, currency, total, placed_at, version)
		VALUES ('a', '1', 'sale', 'paid', 'UK', 'GBP', 1, now(), 2), ('b', '2', 'sale', 'placed', 'UK', 'GBP', 1, now(), 1)`)
	if err != nil {
		t.Fatal(err)
	}
	ws := PostgresWriteSide{Pool: pool, Slot: "guard_test", RelayWait: time.Second}
	if _, err := ws.RelayedVersions(ctx); err == nil || !strings.Contains(err.Error(), "never ran") {
		t.Fatalf("without a relay: err = %v, want one saying the relay never ran", err)
	}
	// A checkpoint at the current position: behind the snapshot taken
	// after it.
	if _, err := pool.Exec(ctx, `INSERT INTO relay_checkpoint (slot_name, state, confirmed_lsn) VALUES ('guard_test', 'streaming', pg_current_wal_lsn())`); err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(ctx, `UPDATE orders SET version = 3 WHERE order_id = 'a'`); err != nil { // WAL moves on
		t.Fatal(err)
	}
	if _, err := ws.RelayedVersions(ctx); err == nil || !strings.Contains(err.Error(), "guard_test") {
		t.Fatalf("relay behind: err = %v, want one naming slot guard_test", err)
	}
	if _, err := pool.Exec(ctx, `UPDATE relay_checkpoint SET confirmed_lsn = 'FFFFFFFF/0' WHERE slot_name = 'guard_test'`); err != nil {
		t.Fatal(err)
	}
	got, err := ws.RelayedVersions(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got["a"] != 3 || got["b"] != 1 {
		t.Fatalf("versions = %v, want a:3 b:1", got)
	}
	_, err = pool.Exec(ctx, `UPDATE orders SET total = 12.345 WHERE order_id = 'a';
		INSERT INTO order_lines (order_id, line_no, stock_code, description, quantity, unit_price, invoiced_at)
		VALUES ('a', 1, 'X', 'x', 1, 12.345, now()), ('a', 2, 'Y', 'y', 1, 0, now())`)
	if err != nil {
		t.Fatal(err)
	}
	facts, err := ws.RelayedFacts(ctx)
	if err != nil {
		t.Fatal(err)
	}
	wantFacts := map[string]Facts{"a": {Version: 3, Status: "paid", TotalMilli: 12345, Lines: 2}, "b": {Version: 1, Status: "placed", TotalMilli: 1000, Lines: 0}}
	if !maps.Equal(facts, wantFacts) {
		t.Fatalf("facts = %+v, want %+v", facts, wantFacts)
	}
}

// TestCheckCutoverOfGroup: the check of a cutover that follows no rebuild
// (`generations cutover N`) judges the generation a daemon filled by the
// daemon group's committed offsets: a complete generation passes; an order
// of the write side that never reached the topic is missing; an order whose
// events lie past the group's offsets is in flight; a partition whose first
// records were deleted afterwards is named although the generation holds
// them.
func TestCheckCutoverOfGroup(t *testing.T) {
	brokers := testenv.KafkaBrokers(t)
	m := analyticsModel(t)
	events, topicName, group := filledByDaemon(t, brokers, m)
	adm := admin(t, brokers)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	check := func(ws WriteSide) error {
		t.Helper()
		ev, err := GroupEvidence(ctx, adm, topicName, group)
		if err != nil {
			t.Fatal(err)
		}
		_, err = CheckCutover(ctx, m.p, 1, ev, GuardConfig{Brokers: brokers, Topic: topicName, WriteSide: ws}, testLog(t))
		return err
	}
	if err := check(eventsWriteSide(events)); err != nil {
		t.Fatalf("complete generation: %v", err)
	}

	// Not in the topic at all: missing. In the topic past the group's
	// offsets (the daemon is stopped): in flight.
	lost, late := newOrder(t, events), newOrder(t, events)
	produce(t, brokers, topicName, late)
	err := check(append(eventsWriteSide(events), lost, late))
	var ge *GuardError
	if !errors.As(err, &ge) || ge.WriteSide == nil || ge.WriteSide.Missing != 1 || ge.WriteSide.InFlight != 1 ||
		ge.WriteSide.MissingExamples[0] != lost.AggregateID {
		t.Fatalf("order never relayed + order in flight: err %v, diff %+v; want %s missing, 1 in flight", err, ge, lost.AggregateID)
	}

	part, cut, _ := cutHead(t, brokers, topicName, 10)
	err = check(append(eventsWriteSide(events), late))
	if !errors.As(err, &ge) || len(ge.Findings) != 1 || !strings.Contains(ge.Findings[0], fmt.Sprintf("partition %d: log start offset %d", part, cut)) {
		t.Fatalf("after deleting the head of partition %d: %v; want only that partition named", part, err)
	}
}
