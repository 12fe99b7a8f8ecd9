package relay

import (
	"context"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/orderstream/orderstream/internal/testenv"
)

// TestPollStallVisible: in poll mode a transaction left open in ANOTHER
// database holds the visibility watermark, so committed outbox rows wait.
// The lag metric shows their age (it used to read 0), the blocker metric
// the open transaction's age, and a WARN names the blocking backend (pid,
// database, xact_start); once it ends, the rows are relayed and both
// metrics return to 0.
func TestPollStallVisible(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	otherURL := testenv.NewDatabase(t)
	other, err := pgx.Connect(ctx, otherURL)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close(ctx)
	u, err := url.Parse(otherURL)
	if err != nil {
		t.Fatal(err)
	}
	otherDB := strings.TrimPrefix(u.Path, "/")
	tx, err := other.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	var pid int32
	var xid string
	if err := tx.QueryRow(ctx, `SELECT pg_backend_pid(), pg_current_xact_id()::text`).Scan(&pid, &xid); err != nil { // the xid makes it hold the watermark
		t.Fatal(err)
	}
	if err := insertOrders(ctx, e.pool, "held", 1, 10, 2); err != nil { // commits after the blocker took its xid
		t.Fatal(err)
	}

	cfg := e.config()
	cfg.Mode = ModePoll
	cfg.StallWarning = time.Second
	cfg.StatusInterval = 100 * time.Millisecond
	logs := &syncBuffer{}
	run := e.start(t, cfg, WithLogger(slog.New(slog.NewJSONHandler(logs, nil))))
	wantWarn := fmt.Sprintf(`"pid":%d,"datname":"%s"`, pid, otherDB)
	t.Cleanup(func() {
		if t.Failed() {
			t.Log(logs.String())
		}
	})
	waitFor(t, "a WARN naming the blocking backend", func() bool { return strings.Contains(logs.String(), wantWarn) })
	for _, line := range strings.Split(logs.String(), "\n") {
		if strings.Contains(line, wantWarn) && (!strings.Contains(line, `"level":"WARN"`) || !strings.Contains(line, `"xact_start":"`)) {
			t.Errorf("the line naming the blocker is not a WARN with xact_start: %s", line)
		}
	}
	if lag := gaugeValue(t, run.r, "orderstream_relay_lag_seconds"); lag < 1 {
		t.Errorf("orderstream_relay_lag_seconds = %v while 20 committed rows wait behind the open transaction, want >= 1", lag)
	}
	if age := gaugeValue(t, run.r, "orderstream_relay_watermark_blocker_seconds"); age <= 0 {
		t.Errorf("orderstream_relay_watermark_blocker_seconds = %v while held, want > 0", age)
	}
	if byOrder := e.readTopic(t); len(byOrder) != 0 {
		t.Fatalf("%d orders relayed while the watermark was held, want 0", len(byOrder))
	}

	if err := tx.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	e.waitRecords(t, 20)
	waitFor(t, "the lag and blocker metrics back to 0", func() bool {
		return gaugeValue(t, run.r, "orderstream_relay_lag_seconds") == 0 && gaugeValue(t, run.r, "orderstream_relay_watermark_blocker_seconds") == 0
	})
	if err := run.shutdown(t); err != nil {
		t.Fatal(err)
	}
	if events, dups := e.verify(t); events != 20 || dups != 0 {
		t.Fatalf("events %d duplicates %d, want 20 and 0", events, dups)
	}
}
