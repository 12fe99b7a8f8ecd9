package relay

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"testing"

	"github.com/orderstream/orderstream/schemas"
	"github.com/twmb/franz-go/pkg/kadm"
)

// insertEvent writes one outbox row of order id at version v whose envelope
// is padded with pad bytes (an event "written some other way": the write
// side itself refuses events over schemas.MaxEventBytes).
func insertEvent(t *testing.T, e *env, id string, v, pad int) {
	t.Helper()
	typ := "order.paid"
	if v == 1 {
		typ = "order.placed"
	}
	_, err := e.pool.Exec(context.Background(), `INSERT INTO outbox (event_id, aggregate_type, aggregate_id, aggregate_version, event_type,
			schema_version, occurred_at, envelope)
		VALUES (gen_random_uuid(), 'order', $1, $2, $3, 1, now(), json_build_object('aggregate_id', $1::text, 'pad', repeat('x', $4)))`, id, v, typ, pad)
	if err != nil {
		t.Fatal(err)
	}
}

// TestOversizedRow: an outbox row larger than the topic accepts stops the
// relay with an error naming the row (outbox id, order, event type, size,
// limit) and what to do; with ParkOversized the relay keeps it, and its
// order's later events, in relay_parked_events and relays every other
// order.
func TestOversizedRow(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	adm := kadm.NewClient(e.kafka)
	configs := map[string]*string{"max.message.bytes": ptr("20000")}
	for k, v := range schemas.ReplayTopicConfigs() {
		configs[k] = v
	}
	if _, err := adm.CreateTopic(ctx, testPartitions, 1, configs, e.topic); err != nil {
		t.Fatal(err)
	}
	waitTopicVisible(t, adm, e.topic)
	cfg := e.config()
	cfg.CreateTopic = false

	insertEvent(t, e, "big-1", 1, 30000)
	insertEvent(t, e, "big-1", 2, 100)
	insertEvent(t, e, "ok-1", 1, 100)
	var bigID int64
	if err := e.pool.QueryRow(ctx, `SELECT id FROM outbox WHERE aggregate_id = 'big-1' AND aggregate_version = 1`).Scan(&bigID); err != nil {
		t.Fatal(err)
	}

	err := e.start(t, cfg).shutdownAfterExit(t)
	var oe *OversizedError
	if !errors.As(err, &oe) || !errors.Is(err, ErrOversized) {
		t.Fatalf("Run = %v, want an *OversizedError", err)
	}
	if oe.OutboxID != bigID || oe.OrderID != "big-1" || oe.EventType != "order.placed" || oe.Limit != 20000-recordFraming || oe.Size <= 30000 {
		t.Errorf("error names outbox id %d, order %s, %s, size %d, limit %d; want %d, big-1, order.placed, > 30000, %d",
			oe.OutboxID, oe.OrderID, oe.EventType, oe.Size, oe.Limit, bigID, 20000-recordFraming)
	}
	for _, want := range []string{"--park-oversized", "max.message.bytes", "orderstream relay parked"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
	if n := len(e.readTopic(t)); n != 0 {
		t.Fatalf("%d orders in the topic after the stop, want none (nothing past the row)", n)
	}

	cfg.ParkOversized = true
	run := e.start(t, cfg)
	e.waitRecords(t, 1) // ok-1 v1
	insertEvent(t, e, "big-1", 3, 100)
	insertEvent(t, e, "ok-1", 2, 100)
	e.waitRecords(t, 2)
	if err := run.shutdown(t); err != nil {
		t.Fatal(err)
	}
	// Parked orders stay parked after a restart, with or without the flag.
	cfg.ParkOversized = false
	run = e.start(t, cfg)
	insertEvent(t, e, "big-1", 4, 100)
	insertEvent(t, e, "ok-2", 1, 100)
	e.waitRecords(t, 3)
	if err := run.shutdown(t); err != nil {
		t.Fatal(err)
	}

	topicOrders := e.readTopic(t)
	if len(topicOrders["big-1"]) != 0 || len(topicOrders["ok-1"]) != 2 || len(topicOrders["ok-2"]) != 1 {
		t.Errorf("topic holds big-1 %d, ok-1 %d, ok-2 %d records; want 0, 2, 1", len(topicOrders["big-1"]), len(topicOrders["ok-1"]), len(topicOrders["ok-2"]))
	}
	parked, err := ListParked(ctx, e.pool)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"big-1 1 oversized", "big-1 2 behind_oversized", "big-1 3 behind_oversized", "big-1 4 behind_oversized"}
	var got []string
	for _, p := range parked {
		got = append(got, strings.Join([]string{p.OrderID, strconv.FormatInt(p.AggregateVersion, 10), p.Reason}, " "))
	}
	if strings.Join(got, "; ") != strings.Join(want, "; ") {
		t.Errorf("parked %q, want %q", got, want)
	}
	var same bool
	if err := e.pool.QueryRow(ctx, `SELECT p.envelope = o.envelope::text FROM relay_parked_events p JOIN outbox o ON o.event_id::text = p.event_id
		WHERE o.id = $1`, bigID).Scan(&same); err != nil || !same {
		t.Errorf("parked envelope equals the outbox's: %v (%v)", same, err)
	}
}
