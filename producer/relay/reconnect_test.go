package relay

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/orderstream/orderstream/internal/testenv"
	"github.com/orderstream/orderstream/internal/testfixture"
)

func TestConnectionLost(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		give error
		want bool
	}{
		{name: "server shutting down (57P01)", give: fmt.Errorf("receive: %w", &pgconn.PgError{Code: "57P01"}), want: true},
		{name: "server starting up (57P03)", give: &pgconn.PgError{Code: "57P03"}, want: true},
		{name: "connection failure (08006)", give: &pgconn.PgError{Code: "08006"}, want: true},
		{name: "too many connections (53300)", give: &pgconn.PgError{Code: "53300"}, want: true},
		{name: "socket closed mid-message", give: fmt.Errorf("read: %w", io.ErrUnexpectedEOF), want: true},
		{name: "dial refused", give: &net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connection refused")}, want: true},
		{name: "conn closed", give: fmt.Errorf("query: %w", pgconn.ErrConnClosed), want: true},
		{name: "wrong password (28P01)", give: &pgconn.PgError{Code: "28P01"}, want: false},
		{name: "undefined table (42P01)", give: &pgconn.PgError{Code: "42P01"}, want: false},
		{name: "slot lost", give: fmt.Errorf("%w: gone", ErrSlotLost), want: false},
		{name: "not migrated", give: ErrNotMigrated, want: false},
		{name: "event refused by Kafka, even over a network error", give: &produceError{&net.OpError{Op: "write", Err: io.EOF}}, want: false},
		{name: "setup stalled", give: fmt.Errorf("relay setup stalled: %w", context.DeadlineExceeded), want: false},
		{name: "nil", give: nil, want: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := connectionLost(tt.give); got != tt.want {
				t.Errorf("connectionLost(%v) = %v, want %v", tt.give, got, tt.want)
			}
		})
	}
}

// privatePostgres is a PostgreSQL server of the test's own, started by
// deploy/local/services.sh with its own state directory and port, so the
// test may stop and restart it without touching the shared server.
type privatePostgres struct {
	url    string
	script string
	env    []string
}

// startPrivatePostgres initialises and starts the server (about 3 s) and
// stops it at cleanup. services.sh runs the server as the postgres OS user,
// which needs root: outside CI a test run by another user is skipped, under
// CI=true it fails.
func startPrivatePostgres(t *testing.T) *privatePostgres {
	t.Helper()
	if os.Geteuid() != 0 {
		msg := "a private PostgreSQL server needs root (services.sh runs it as the postgres OS user)"
		if testenv.InCI() {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	dir := t.TempDir()
	// The postgres OS user must traverse the state directory.
	for d := dir; d != os.TempDir() && d != "/"; d = filepath.Dir(d) {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
	ln.Close()
	p := &privatePostgres{
		url:    "postgres://orderstream:orderstream@127.0.0.1:" + port + "/orderstream?sslmode=disable",
		script: filepath.Join(testfixture.ModuleRoot(t), "deploy", "local", "services.sh"),
		env:    append(os.Environ(), "ORDERSTREAM_LOCAL_DIR="+dir, "ORDERSTREAM_PG_PORT="+port),
	}
	t.Cleanup(func() { p.services(t, "down") })
	p.services(t, "up")
	return p
}

// services runs `services.sh <action> postgres` on the private server.
func (p *privatePostgres) services(t *testing.T, action string) {
	t.Helper()
	cmd := exec.Command(p.script, action, "postgres")
	cmd.Env = p.env
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("services.sh %s postgres (private server): %v\n%s", action, err, out)
	}
}

// TestReconnectAfterPostgresRestart: PostgreSQL (a private server) is
// stopped and started while an active WAL relay streams, a standby waits
// and a poll-mode relay (its own slot name and topic) polls, with a writer
// committing throughout. Every relay reconnects by itself (no new process),
// /healthz and the metrics say so while they do, exactly one WAL relay ends
// up streaming and the other standby, and every event written before,
// around and after the restart is in each topic exactly once.
func TestReconnectAfterPostgresRestart(t *testing.T) {
	testenv.KafkaBrokers(t) // skips (fails under CI) before a server is started for nothing
	pg := startPrivatePostgres(t)
	e := newEnvAt(t, pg.url)
	cfg := e.config()
	cfg.ReconnectInitial, cfg.ReconnectMax = 100*time.Millisecond, time.Second
	a := e.start(t, cfg)
	waitState(t, a.r, StateStreaming)
	b := e.start(t, cfg)
	waitState(t, b.r, StateStandby)
	// A poll-mode relay of its own (slot name, topic) on the same outbox.
	ep := newEnvAt(t, pg.url)
	pcfg := ep.config()
	pcfg.Mode, pcfg.ReconnectInitial, pcfg.ReconnectMax = ModePoll, cfg.ReconnectInitial, cfg.ReconnectMax
	p := ep.start(t, pcfg)
	waitState(t, p.r, StateStreaming)
	if err := insertOrders(context.Background(), e.pool, "before", 1, 200, 2); err != nil {
		t.Fatal(err)
	}
	e.waitRecords(t, 400)

	// A writer commits a small transaction every 20 ms until told to stop;
	// failures while the server is down are expected (the outbox is the
	// truth verify compares with).
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 1; ; i++ {
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			_ = insertOrders(ctx, e.pool, fmt.Sprintf("w%d", i), 1, 5, 2)
			cancel()
		}
	}()
	defer func() {
		select {
		case <-stop:
		default:
			close(stop)
		}
		wg.Wait()
	}()
	e.waitRecords(t, 500) // the writer's events are streaming

	pg.services(t, "stop")
	for _, run := range []*running{a, b, p} {
		waitState(t, run.r, StateReconnecting)
	}
	waitFor(t, "two reconnection attempts of the active relay while the server is down", func() bool {
		return counterValue(a.r.m.reconnects) >= 2
	})
	rec := httptest.NewRecorder()
	a.r.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/healthz", nil))
	if rec.Code != http.StatusServiceUnavailable || !strings.HasPrefix(rec.Body.String(), "reconnecting\nconnection lost at ") {
		t.Errorf("/healthz while PostgreSQL is down: %d %q, want 503 reconnecting with the error", rec.Code, rec.Body.String())
	}
	rec = httptest.NewRecorder()
	a.r.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/livez", nil))
	if rec.Code != http.StatusOK || rec.Body.String() != "reconnecting\n" {
		t.Errorf("/livez while PostgreSQL is down: %d %q, want 200 reconnecting (the relay heals by itself)", rec.Code, rec.Body.String())
	}
	if g := gaugeValue(t, a.r, "orderstream_relay_postgres_connected"); g != 0 {
		t.Errorf("orderstream_relay_postgres_connected = %v while the server is down, want 0", g)
	}
	pg.services(t, "start")

	waitFor(t, "one relay streaming and the other standby after the restart", func() bool {
		sa, sb := a.r.State(), b.r.State()
		return (sa == StateStreaming && sb == StateStandby || sa == StateStandby && sb == StateStreaming) && p.r.State() == StateStreaming
	})
	close(stop)
	wg.Wait()
	waitFor(t, "a write after the restart", func() bool { // the test's pool may still hold a connection from before
		return insertOrders(context.Background(), e.pool, "after", 1, 100, 2) == nil
	})
	e.waitRelayed(t)
	ep.waitRelayed(t)
	for _, run := range []*running{a, b, p} {
		if g := gaugeValue(t, run.r, "orderstream_relay_postgres_connected"); g != 1 {
			t.Errorf("orderstream_relay_postgres_connected = %v after the restart, want 1", g)
		}
		if n := counterValue(run.r.m.reconnects); n < 1 {
			t.Errorf("orderstream_relay_reconnects_total = %v, want >= 1", n)
		}
		rec := httptest.NewRecorder()
		run.r.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/healthz", nil))
		if rec.Code != http.StatusOK {
			t.Errorf("/healthz after the restart: %d %q, want 200", rec.Code, rec.Body.String())
		}
	}
	for _, run := range []*running{a, b, p} {
		if err := run.shutdown(t); err != nil {
			t.Fatalf("Run: %v", err)
		}
	}
	events, dups := e.verify(t)
	if dups != 0 {
		t.Fatalf("WAL mode: %d of %d events in Kafka twice after the restart", dups, events)
	}
	if events, dups := ep.verify(t); dups != 0 {
		t.Fatalf("poll mode: %d of %d events in Kafka twice after the restart", dups, events)
	}
	t.Logf("%d events, 0 duplicates; reconnects: active %v, standby %v, poll %v; duplicates skipped: WAL %d, poll %d",
		events, counterValue(a.r.m.reconnects), counterValue(b.r.m.reconnects), counterValue(p.r.m.reconnects),
		a.r.Stats().Duplicates+b.r.Stats().Duplicates, p.r.Stats().Duplicates)
}

// TestSlotLossAfterReconnect: the relay's backends are terminated (a lost
// connection: it reconnects) and its slot is dropped meanwhile; the
// reconnected session still detects the loss and Run stops with
// ErrSlotLost instead of resuming from now.
func TestSlotLossAfterReconnect(t *testing.T) {
	e := newEnv(t)
	cfg := e.config()
	cfg.ReconnectInitial, cfg.ReconnectMax = 300*time.Millisecond, time.Second
	run := e.start(t, cfg)
	if err := insertOrders(context.Background(), e.pool, "s", 1, 50, 2); err != nil {
		t.Fatal(err)
	}
	e.waitRecords(t, 100)
	ctx := context.Background()
	u, err := url.Parse(e.pgURL)
	if err != nil {
		t.Fatal(err)
	}
	db := strings.TrimPrefix(u.Path, "/")
	waitFor(t, "the slot dropped after terminating the relay's backends", func() bool {
		// Every backend of the relay in the test's database (walsender,
		// lock, pool), then the slot once no walsender holds it; a relay
		// that reattached meanwhile is terminated again.
		_, _ = e.pool.Exec(ctx, `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()`, db)
		_, err := e.pool.Exec(ctx, `SELECT pg_drop_replication_slot($1)`, e.slot)
		return err == nil
	})
	err = run.shutdownAfterExit(t)
	if !errors.Is(err, ErrSlotLost) {
		t.Fatalf("Run: %v, want ErrSlotLost after the reconnect", err)
	}
	if n := counterValue(run.r.m.reconnects); n < 1 {
		t.Fatalf("orderstream_relay_reconnects_total = %v, want >= 1 (the loss must be found by a reconnected session)", n)
	}
}

// waitFor polls cond every 20 ms for up to a minute.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after a minute waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond) // polling a condition with a deadline
	}
}

// counterSum sums the samples of a counter of the relay's registry.
func counterSum(t *testing.T, r *Relay, name string) float64 {
	t.Helper()
	mfs, err := r.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	var v float64
	for _, mf := range mfs {
		if mf.GetName() == name {
			for _, m := range mf.GetMetric() {
				v += m.GetCounter().GetValue()
			}
		}
	}
	return v
}

// gaugeValue reads a gauge of the relay's registry by name.
func gaugeValue(t *testing.T, r *Relay, name string) float64 {
	t.Helper()
	mfs, err := r.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name && len(mf.GetMetric()) == 1 {
			return mf.GetMetric()[0].GetGauge().GetValue()
		}
	}
	t.Fatalf("metric %s not found", name)
	return 0
}
