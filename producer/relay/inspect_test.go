package relay

import (
	"context"
	"testing"
	"time"
)

// waitInspection polls Inspect until ok holds for it, failing at the deadline
// with the last inspection.
func (e *env) waitInspection(t *testing.T, what string, ok func(Inspection) bool) Inspection {
	t.Helper()
	deadline := time.Now().Add(relayedDeadline)
	for {
		in, err := Inspect(context.Background(), e.pool, e.slot)
		if err == nil && ok(in) {
			return in
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s; last inspection %+v, err %v", what, relayedDeadline, in, err)
		}
		time.Sleep(100 * time.Millisecond) // polling a condition with a deadline
	}
}

// Inspect tells the three modes apart, RelayedUpTo follows the relay past
// an earlier WAL position, and ResetSlot leaves a WAL slot as if it never
// ran.
func TestInspectAndResetSlot(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	if err := insertOrders(ctx, e.pool, "inspect", 1, 5, 2); err != nil {
		t.Fatal(err)
	}
	before, err := Inspect(ctx, e.pool, e.slot)
	if err != nil {
		t.Fatal(err)
	}
	if before.Mode != ModeNotStarted || before.SlotExists || before.Unrelayed != -1 || before.OutboxRows != 10 {
		t.Fatalf("before any relay: %+v, want not started, no slot, unrelayed -1, 10 outbox rows", before)
	}
	if before.RelayedUpTo(0) {
		t.Fatal("RelayedUpTo is true for a relay that never ran")
	}

	run := e.start(t, e.config())
	in := e.waitInspection(t, "WAL relay passes the position of the first inspection", func(in Inspection) bool {
		return in.RelayedUpTo(before.Current())
	})
	if in.Mode != ModeWAL || !in.Streaming() || !in.SlotExists || !in.SlotActive || in.ConfirmedLSN == "" || in.CommitTime.IsZero() {
		t.Fatalf("streaming WAL relay: %+v, want mode wal, streaming, active slot, confirmed LSN and commit time", in)
	}
	if in.Current() < before.Current() {
		t.Fatalf("current LSN went back: %s < %s", in.Current(), before.Current())
	}
	if in.RelayedUpTo(in.Current() + 1<<40) {
		t.Fatal("RelayedUpTo holds for a WAL position far ahead of the confirmed one")
	}
	if err := run.shutdown(t); err != nil {
		t.Fatal(err)
	}

	e.waitInspection(t, "slot inactive after shutdown", func(in Inspection) bool { return !in.SlotActive })
	if err := ResetSlot(ctx, e.pool, e.slot); err != nil {
		t.Fatal(err)
	}
	after, err := Inspect(ctx, e.pool, e.slot)
	if err != nil {
		t.Fatal(err)
	}
	if after.Mode != ModeNotStarted || after.SlotExists || after.CheckpointState != "" {
		t.Fatalf("after ResetSlot: %+v, want not started and no slot", after)
	}
	if err := ResetSlot(ctx, e.pool, e.slot); err != nil {
		t.Fatalf("ResetSlot of a slot that is gone: %v", err)
	}

	cfg := e.config()
	cfg.Mode = ModePoll
	e.start(t, cfg)
	in = e.waitInspection(t, "poll relay relays every row", func(in Inspection) bool { return in.Mode == ModePoll && in.Unrelayed == 0 })
	if !in.RelayedUpTo(in.Current()) || in.SlotExists {
		t.Fatalf("caught-up poll relay: %+v, want RelayedUpTo and no slot", in)
	}
}

func TestInspectionRelayedUpTo(t *testing.T) {
	t.Parallel()
	const target = 0x1_0000_0100 // 1/100
	tests := []struct {
		name string
		give Inspection
		want bool
	}{
		{name: "wal streaming at target", give: Inspection{Mode: ModeWAL, CheckpointState: "streaming", ConfirmedLSN: "1/100"}, want: true},
		{name: "wal streaming past target", give: Inspection{Mode: ModeWAL, CheckpointState: "streaming", ConfirmedLSN: "2/0"}, want: true},
		{name: "wal streaming behind target", give: Inspection{Mode: ModeWAL, CheckpointState: "streaming", ConfirmedLSN: "1/FF"}, want: false},
		{name: "wal backfill past target", give: Inspection{Mode: ModeWAL, CheckpointState: "backfill", ConfirmedLSN: "2/0"}, want: false},
		{name: "wal creating, no LSN", give: Inspection{Mode: ModeWAL, CheckpointState: "creating"}, want: false},
		{name: "poll nothing unrelayed", give: Inspection{Mode: ModePoll, Unrelayed: 0}, want: true},
		{name: "poll rows unrelayed", give: Inspection{Mode: ModePoll, Unrelayed: 3}, want: false},
		{name: "not started", give: Inspection{Mode: ModeNotStarted, Unrelayed: -1}, want: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.give.RelayedUpTo(target); got != tt.want {
				t.Errorf("RelayedUpTo(1/100) = %v, want %v", got, tt.want)
			}
		})
	}
	if got := (Inspection{CurrentLSN: "16/B374D848"}).Current(); got != 0x16_B374D848 {
		t.Errorf("Current() = %s, want 16/B374D848", got)
	}
}
