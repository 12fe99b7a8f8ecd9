package relay

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/orderstream/orderstream/internal/testenv"
	"github.com/orderstream/orderstream/producer/store"
	"github.com/orderstream/orderstream/producer/topic"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Environment of a relay child process (the test binary re-executed).
const (
	childEnv         = "ORDERSTREAM_RELAY_TEST_CHILD"
	childPG          = "ORDERSTREAM_RELAY_TEST_PG"
	childBrokers     = "ORDERSTREAM_RELAY_TEST_BROKERS"
	childTopic       = "ORDERSTREAM_RELAY_TEST_TOPIC"
	childSlot        = "ORDERSTREAM_RELAY_TEST_SLOT"
	childStatus      = "ORDERSTREAM_RELAY_TEST_STATUS_INTERVAL" // optional Config.StatusInterval
	testPartitions   = 6
	relayedDeadline  = 3 * time.Minute
	childStopTimeout = time.Minute
)

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) == "1" {
		os.Exit(runChild())
	}
	os.Exit(m.Run())
}

// runChild runs a relay like `orderstream relay` does: SIGTERM is a clean
// stop (0), any other error exits 1 with the error on stderr.
func runChild() int {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	log := slog.New(slog.NewJSONHandler(os.Stderr, nil))
	var status time.Duration
	if v := os.Getenv(childStatus); v != "" {
		var err error
		if status, err = time.ParseDuration(v); err != nil {
			fmt.Fprintln(os.Stderr, childStatus, err)
			return 2
		}
	}
	r, err := New(Config{
		PostgresURL: os.Getenv(childPG), Brokers: strings.Split(os.Getenv(childBrokers), ","),
		Topic: os.Getenv(childTopic), Slot: os.Getenv(childSlot),
		Heartbeat: 500 * time.Millisecond, StandbyPoll: 200 * time.Millisecond, StatusInterval: status,
		CreateTopic: true, TopicSpec: topic.Spec{Partitions: testPartitions},
	}, WithLogger(log))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	err = r.Run(ctx)
	if err != nil && !(errors.Is(err, context.Canceled) && ctx.Err() != nil) {
		fmt.Fprintln(os.Stderr, "relay failed:", err)
		return 1
	}
	return 0
}

// env is one test's database, topic and slot.
type env struct {
	pgURL   string
	brokers []string
	topic   string
	slot    string
	pool    *pgxpool.Pool
	kafka   *kgo.Client
}

func newEnv(t *testing.T) *env { return newEnvTB(t) }

func newEnvTB(t testing.TB) *env { return newEnvAt(t, testenv.NewDatabase(t)) }

// newEnvAt is an env on the database at pgURL (migrated here).
func newEnvAt(t testing.TB, pgURL string) *env {
	t.Helper()
	e := &env{pgURL: pgURL, brokers: testenv.KafkaBrokers(t), topic: testenv.Name("relay"), slot: testenv.Name("slot")}
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, e.pgURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	e.pool = pool
	if _, err := store.Migrate(ctx, pool, slog.New(slog.NewTextHandler(io.Discard, nil))); err != nil {
		t.Fatal(err)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(e.brokers...))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	e.kafka = cl
	t.Cleanup(func() {
		_, _ = kadm.NewClient(cl).DeleteTopics(context.Background(), e.topic)
	})
	return e
}

func (e *env) config() Config {
	return Config{
		PostgresURL: e.pgURL, Brokers: e.brokers, Topic: e.topic, Slot: e.slot,
		Heartbeat: 500 * time.Millisecond, StandbyPoll: 200 * time.Millisecond, OutboxRetention: -1,
		CreateTopic: true, TopicSpec: topic.Spec{Partitions: testPartitions},
	}
}

// running is a relay run in this process.
type running struct {
	r    *Relay
	stop context.CancelFunc
	done chan error
}

func (e *env) start(t *testing.T, cfg Config, opts ...Option) *running {
	t.Helper()
	opts = append([]Option{WithLogger(slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelInfo})))}, opts...)
	r, err := New(cfg, opts...)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	run := &running{r: r, stop: cancel, done: make(chan error, 1)}
	go func() { run.done <- r.Run(ctx) }()
	t.Cleanup(func() { run.stop(); <-run.done })
	return run
}

// shutdown cancels the relay and returns Run's error (nil for a clean stop).
func (run *running) shutdown(t *testing.T) error {
	t.Helper()
	run.stop()
	select {
	case err := <-run.done:
		run.done <- err // for the cleanup
		if errors.Is(err, context.Canceled) {
			return nil
		}
		return err
	case <-time.After(childStopTimeout):
		t.Fatal("relay did not stop within a minute")
		return nil
	}
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// insertOrders writes orders first..last (ids "<prefix>-<n>") with versions
// 1..perOrder each, in ONE transaction, in (order, version) order. The
// envelope is a JSON document padded to about 400 bytes.
func insertOrders(ctx context.Context, pool *pgxpool.Pool, prefix string, first, last, perOrder int) error {
	_, err := pool.Exec(ctx, `INSERT INTO outbox (event_id, aggregate_type, aggregate_id, aggregate_version, event_type,
			schema_version, occurred_at, envelope)
		SELECT gen_random_uuid(), 'order', $1 || '-' || g, v, CASE WHEN v = 1 THEN 'order.placed' ELSE 'order.paid' END,
			1, now(), json_build_object('aggregate_id', $1 || '-' || g, 'aggregate_version', v, 'pad', repeat('x', 300))
		FROM generate_series($2::int, $3::int) g, generate_series(1, $4::int) v
		ORDER BY g, v`, prefix, first, last, perOrder)
	return err
}

// waitRecords waits until the topic holds at least n records.
func (e *env) waitRecords(t *testing.T, n int64) {
	t.Helper()
	deadline := time.Now().Add(relayedDeadline)
	adm := kadm.NewClient(e.kafka)
	var got int64
	for time.Now().Before(deadline) {
		ends, err := adm.ListEndOffsets(context.Background(), e.topic)
		if err == nil {
			got = 0
			ends.Each(func(o kadm.ListedOffset) { got += o.Offset })
			if got >= n {
				return
			}
		}
		time.Sleep(100 * time.Millisecond) // polling a condition with a deadline
	}
	t.Fatalf("topic %s holds %d records after %s, want %d", e.topic, got, relayedDeadline, n)
}

// record is what the checks need of a Kafka record.
type record struct {
	eventID   string
	version   string
	partition int32
	value     []byte
	headers   map[string]string
}

// readTopic reads every record the relay wrote (those with a
// relay_position header; records of others are left out), per order (key)
// in offset order.
func (e *env) readTopic(t *testing.T) map[string][]record {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	adm := kadm.NewClient(e.kafka)
	ends, err := adm.ListEndOffsets(ctx, e.topic)
	if err != nil {
		t.Fatal(err)
	}
	remaining := map[int32]int64{}
	from := map[int32]kgo.Offset{}
	ends.Each(func(o kadm.ListedOffset) {
		if o.Offset > 0 {
			remaining[o.Partition] = o.Offset
			from[o.Partition] = kgo.NewOffset().AtStart()
		}
	})
	out := map[string][]record{}
	if len(from) == 0 {
		return out
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(e.brokers...), kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{e.topic: from}))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	for len(remaining) > 0 {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("read topic: %v (partitions left %v)", ctx.Err(), remaining)
		}
		fs.EachRecord(func(r *kgo.Record) {
			end, ok := remaining[r.Partition]
			if !ok || r.Offset >= end {
				return
			}
			if r.Offset+1 >= end {
				delete(remaining, r.Partition)
			}
			rec := record{partition: r.Partition, value: r.Value, headers: map[string]string{}}
			for _, h := range r.Headers {
				rec.headers[h.Key] = string(h.Value)
			}
			if _, ok := rec.headers[HeaderPosition]; !ok {
				return
			}
			rec.eventID, rec.version = rec.headers["ce_id"], rec.headers["aggregate_version"]
			out[string(r.Key)] = append(out[string(r.Key)], rec)
		})
	}
	return out
}

// waitRelayed waits until every outbox event is in the topic.
func (e *env) waitRelayed(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(relayedDeadline)
	for {
		seen := map[string]bool{}
		for _, recs := range e.readTopic(t) {
			for _, r := range recs {
				seen[r.eventID] = true
			}
		}
		var missing int
		err := e.pool.QueryRow(context.Background(), `SELECT count(*) FROM outbox WHERE NOT (event_id::text = ANY($1))`, keys(seen)).Scan(&missing)
		if err == nil && missing == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d outbox events not in topic %s after %s (%v)", missing, e.topic, relayedDeadline, err)
		}
		time.Sleep(200 * time.Millisecond) // polling a condition with a deadline
	}
}

func keys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}

// verify checks every outbox event is in the topic, per order in version
// order 1..n once duplicates are dropped, and returns the duplicates.
func (e *env) verify(t *testing.T) (events, duplicates int) {
	t.Helper()
	byOrder := e.readTopic(t)
	seen := map[string]int{}
	for order, recs := range byOrder {
		want := int64(1)
		for _, r := range recs {
			seen[r.eventID]++
			if seen[r.eventID] > 1 {
				duplicates++
				continue
			}
			if r.version != fmt.Sprint(want) {
				t.Errorf("order %s: version %s where %d was due (records %d)", order, r.version, want, len(recs))
				break
			}
			want++
		}
	}
	rows, err := e.pool.Query(context.Background(), `SELECT event_id::text FROM outbox`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	missing := 0
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			t.Fatal(err)
		}
		events++
		if seen[id] == 0 {
			missing++
		}
	}
	if missing > 0 {
		t.Errorf("%d of %d outbox events are not in the topic", missing, events)
	}
	if len(seen) != events {
		t.Errorf("topic holds %d distinct events, outbox %d", len(seen), events)
	}
	return events, duplicates
}

// child is a relay running as a separate process.
type child struct {
	cmd  *exec.Cmd
	logs *syncBuffer
	done chan error
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// startChild starts a relay process; extraEnv are NAME=value settings
// (e.g. childStatus).
func (e *env) startChild(t *testing.T, extraEnv ...string) *child {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"=1", childPG+"="+e.pgURL, childBrokers+"="+strings.Join(e.brokers, ","),
		childTopic+"="+e.topic, childSlot+"="+e.slot)
	cmd.Env = append(cmd.Env, extraEnv...)
	c := &child{cmd: cmd, logs: &syncBuffer{}, done: make(chan error, 1)}
	cmd.Stderr = c.logs
	cmd.Stdout = c.logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { c.done <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-c.done
		c.done <- nil
	})
	return c
}

// kill sends SIGKILL and waits for the process to be gone.
func (c *child) kill(t *testing.T) {
	t.Helper()
	_ = c.cmd.Process.Signal(syscall.SIGKILL)
	err := <-c.done
	c.done <- err
}

// waitLog waits until the child logged substr.
func (c *child) waitLog(t *testing.T, substr string) {
	t.Helper()
	deadline := time.Now().Add(relayedDeadline)
	for !strings.Contains(c.logs.String(), substr) {
		if time.Now().After(deadline) {
			t.Fatalf("child did not log %q; logs:\n%s", substr, c.logs.String())
		}
		time.Sleep(50 * time.Millisecond) // polling a condition with a deadline
	}
}

// exitCode waits for the child to exit on its own.
func (c *child) exitCode(t *testing.T) int {
	t.Helper()
	select {
	case err := <-c.done:
		c.done <- err
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return ee.ExitCode()
		}
		if err != nil {
			t.Fatal(err)
		}
		return 0
	case <-time.After(childStopTimeout):
		t.Fatalf("child did not exit; logs:\n%s", c.logs.String())
		return -1
	}
}
