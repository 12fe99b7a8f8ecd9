package consumers

import (
	"context"
	"errors"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// crashSwitch simulates the crash of the process that owns a client: crash
// closes every connection the client opened, refuses new ones and cancels
// the client's context, so nothing more reaches the broker — no commit, no
// heartbeat, no LeaveGroup (which Close would send for a dynamic member).
type crashSwitch struct {
	mu      sync.Mutex
	crashed bool
	conns   []net.Conn
	ctx     context.Context
	cancel  context.CancelFunc
}

func newCrashSwitch() *crashSwitch {
	ctx, cancel := context.WithCancel(context.Background())
	return &crashSwitch{ctx: ctx, cancel: cancel}
}

// opts are the client options that route the client through s.
func (s *crashSwitch) opts() Option {
	return WithClientOpts(kgo.WithContext(s.ctx), kgo.Dialer(s.dial))
}

func (s *crashSwitch) dial(ctx context.Context, network, host string) (net.Conn, error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, network, host)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.crashed {
		conn.Close()
		return nil, errors.New("process crashed")
	}
	s.conns = append(s.conns, conn)
	return conn, nil
}

func (s *crashSwitch) crash() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.crashed = true
	s.cancel()
	for _, c := range s.conns {
		c.Close()
	}
}

// staticMembers returns the instance ids of group's members.
func staticMembers(t testing.TB, brokers []string, group string) []string {
	t.Helper()
	adm, closeAdm := admin(t, brokers)
	defer closeAdm()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	described, err := adm.DescribeGroups(ctx, group)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, m := range described[group].Members {
		if m.InstanceID != nil {
			ids = append(ids, *m.InstanceID)
		}
	}
	return ids
}

// restartGap runs a member until it committed every record, crashes it,
// produces more records and starts a new member with the same config: it
// returns the time from that start to the first new record written, after
// checking that every record was written and committed.
func restartGap(t testing.TB, cfg Config, brokers []string) time.Duration {
	t.Helper()
	rec := newRecorder()
	sink := &fakeSink{WriteFn: func(_ context.Context, b []Record) error { rec.record(b); return nil }}
	before := produce(t, brokers, cfg.Topic, 300)
	sw := newCrashSwitch()
	c1, err := New(cfg, sink, WithLogger(testLogger(t)), sw.opts())
	if err != nil {
		t.Fatal(err)
	}
	start(t, c1)
	eventually(t, 60*time.Second, "first member to commit every record", func() bool {
		return sum(committed(t, brokers, cfg.Group, cfg.Topic)) == int64(len(before))
	})
	sw.crash()
	if cfg.InstanceID != "" {
		if got := staticMembers(t, brokers, cfg.Group); len(got) != 1 || got[0] != cfg.InstanceID {
			t.Fatalf("after the crash the group's static members are %q, want [%s]: the crash left the group", got, cfg.InstanceID)
		}
	}

	after := produce(t, brokers, cfg.Topic, 30)
	isNew := map[string]bool{}
	for _, id := range after {
		isNew[id] = true
	}
	var firstNew time.Time
	var mu sync.Mutex
	sink2 := &fakeSink{WriteFn: func(_ context.Context, b []Record) error {
		rec.record(b)
		mu.Lock()
		defer mu.Unlock()
		for _, r := range b {
			if isNew[r.Event.EventID.String()] && firstNew.IsZero() {
				firstNew = time.Now()
			}
		}
		return nil
	}}
	c2, err := New(cfg, sink2, WithLogger(testLogger(t)))
	if err != nil {
		t.Fatal(err)
	}
	restarted := time.Now()
	stop, _ := start(t, c2)
	eventually(t, cfg.SessionTimeout+60*time.Second, "every record committed after the restart", func() bool {
		return sum(committed(t, brokers, cfg.Group, cfg.Topic)) == int64(len(before)+len(after))
	})
	if err := stop(); err != nil {
		t.Fatalf("Run after the restart: %v", err)
	}
	for _, id := range append(before, after...) {
		if rec.seen[id] == 0 {
			t.Fatalf("event %s never written", id)
		}
	}
	if rec.distinct() != len(before)+len(after) {
		t.Fatalf("distinct written %d, want %d", rec.distinct(), len(before)+len(after))
	}
	mu.Lock()
	defer mu.Unlock()
	return firstNew.Sub(restarted)
}

// A crashed static member restarted with the same instance id gets its
// partitions back at once: it processes new records well within the
// session timeout (a dynamic member's restart waits the timeout out: the
// crashed member holds the partitions until it expires). Nothing is lost.
func TestKafkaStaticMemberRestartRegainsPartitions(t *testing.T) {
	t.Parallel()
	brokers, topic := realTopic(t, 3)
	cfg := realConfig(brokers, topic)
	cfg.InstanceID = InstanceIDFor("host-1", "search")
	cfg.SessionTimeout = DefaultSessionTimeout
	gap := restartGap(t, cfg, brokers)
	t.Logf("static member: restart → first new record written in %s (session timeout %s)", gap.Round(time.Millisecond), cfg.SessionTimeout)
	if gap > cfg.SessionTimeout/4 {
		t.Errorf("restart → first new record: %s, want well under the session timeout %s", gap, cfg.SessionTimeout)
	}
}

// A static member that crashes and does not come back holds its partitions
// for the session timeout only: then the survivor processes them.
func TestKafkaCrashedStaticMemberExpiresAfterSessionTimeout(t *testing.T) {
	t.Parallel()
	brokers, topic := realTopic(t, 4)
	cfg := realConfig(brokers, topic)
	cfg.SessionTimeout = 6 * time.Second // the broker's minimum
	rec := newRecorder()
	sink := &fakeSink{WriteFn: func(_ context.Context, b []Record) error { rec.record(b); return nil }}
	cfgA, cfgB := cfg, cfg
	cfgA.InstanceID, cfgB.InstanceID = "member-a", "member-b"
	sw := newCrashSwitch()
	a, err := New(cfgA, sink, WithLogger(testLogger(t)), sw.opts())
	if err != nil {
		t.Fatal(err)
	}
	b, err := New(cfgB, sink, WithLogger(testLogger(t)))
	if err != nil {
		t.Fatal(err)
	}
	start(t, a)
	stopB, _ := start(t, b)
	eventually(t, 60*time.Second, "both members to own partitions", func() bool {
		return len(a.Health().Partitions) > 0 && len(b.Health().Partitions) > 0
	})
	sw.crash()
	crashed := time.Now()
	ids := produce(t, brokers, topic, 200) // to every partition
	eventually(t, cfg.SessionTimeout+30*time.Second, "the survivor to commit every record", func() bool {
		return sum(committed(t, brokers, cfg.Group, topic)) == int64(len(ids))
	})
	took := time.Since(crashed)
	t.Logf("survivor took over the crashed static member's partitions in %s (session timeout %s)", took.Round(100*time.Millisecond), cfg.SessionTimeout)
	if took < cfg.SessionTimeout-time.Second {
		t.Errorf("taken over after %s, before the session timeout %s: the crash was not a crash", took, cfg.SessionTimeout)
	}
	if err := stopB(); err != nil {
		t.Fatalf("survivor's Run: %v", err)
	}
	if rec.distinct() != len(ids) {
		t.Errorf("distinct written %d, want %d", rec.distinct(), len(ids))
	}
}

// Two live processes with one instance id: the one that joined first is
// fenced and stops with a *FencedError naming the id and the fix, instead of
// rejoining and fencing the other in a loop; the other goes on.
func TestKafkaSameInstanceIDFencesWithClearError(t *testing.T) {
	t.Parallel()
	brokers, topic := realTopic(t, 2)
	cfg := realConfig(brokers, topic)
	cfg.InstanceID = "dup-id"
	rec := newRecorder()
	sink := &fakeSink{WriteFn: func(_ context.Context, b []Record) error { rec.record(b); return nil }}
	first := produce(t, brokers, topic, 50)
	c1, err := New(cfg, sink, WithLogger(testLogger(t)))
	if err != nil {
		t.Fatal(err)
	}
	_, done1 := start(t, c1)
	eventually(t, 60*time.Second, "first process to commit every record", func() bool {
		return sum(committed(t, brokers, cfg.Group, topic)) == int64(len(first))
	})
	c2, err := New(cfg, sink, WithLogger(testLogger(t)))
	if err != nil {
		t.Fatal(err)
	}
	stop2, done2 := start(t, c2)
	var err1 error
	select {
	case err1 = <-done1:
	case <-time.After(30 * time.Second):
		t.Fatal("the fenced process did not stop within 30s")
	}
	t.Logf("fenced process stopped: %v", err1)
	var fe *FencedError
	if !errors.As(err1, &fe) || !errors.Is(err1, kerr.FencedInstanceID) {
		t.Fatalf("fenced process: Run = %v, want a *FencedError wrapping FENCED_INSTANCE_ID", err1)
	}
	for _, want := range []string{`instance id "dup-id"`, "--instance-id", cfg.Group} {
		if !strings.Contains(err1.Error(), want) {
			t.Errorf("error %q lacks %q", err1, want)
		}
	}
	more := produce(t, brokers, topic, 50)
	eventually(t, 60*time.Second, "the other process to commit the new records", func() bool {
		return sum(committed(t, brokers, cfg.Group, topic)) == int64(len(first)+len(more))
	})
	select {
	case err := <-done2:
		t.Fatalf("the process that joined last stopped too: %v", err)
	default:
	}
	if err := stop2(); err != nil {
		t.Fatalf("Run of the process that joined last: %v", err)
	}
	if rec.distinct() != len(first)+len(more) {
		t.Errorf("distinct written %d, want %d", rec.distinct(), len(first)+len(more))
	}
}

// A session timeout the broker refuses stops Run with an error naming it,
// instead of a join retried forever.
func TestKafkaRefusedSessionTimeoutStops(t *testing.T) {
	t.Parallel()
	brokers, topic := realTopic(t, 1)
	cfg := realConfig(brokers, topic)
	cfg.SessionTimeout = 2 * time.Second // below the broker's group.min.session.timeout.ms (6s)
	c, err := New(cfg, &fakeSink{WriteFn: func(context.Context, []Record) error { return nil }}, WithLogger(testLogger(t)))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err = c.Run(ctx)
	if !errors.Is(err, kerr.InvalidSessionTimeout) || !strings.Contains(err.Error(), "session timeout 2s refused by the broker") {
		t.Fatalf("Run = %v, want the refused session timeout named", err)
	}
	if ctx.Err() != nil {
		t.Fatal("Run returned only at the test's deadline")
	}
}
