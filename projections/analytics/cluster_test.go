package analytics_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/orderstream/orderstream/internal/testenv"
	"github.com/orderstream/orderstream/internal/testfixture"
	"github.com/orderstream/orderstream/projections/analytics"
)

// clusterTarget is the cluster profile's ClickHouse (two shards of two
// replicas), in a database of the test's own created ON CLUSTER.
func clusterTarget(t *testing.T) (target, testfixture.Cluster) {
	t.Helper()
	c := testfixture.ClusterProfile(t)
	cfg := databaseOn(t, c.ClickHouseAddr)
	cfg.Cluster = c.ClickHouseCluster
	conn, err := analytics.Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return target{name: "cluster " + cfg.Cluster, cfg: cfg, conn: conn,
		sink: func(t *testing.T, cfg analytics.Config) *analytics.Sink { return newSink(t, cfg) }}, c
}

// nodeConfig is cfg on one node of the cluster only (addrs[i]).
func nodeConfig(cfg analytics.Config, i int) analytics.Config {
	cfg.Addr = strings.Split(cfg.Addr, ",")[i]
	return cfg
}

// TestClusterCutoverUnderConcurrentReads is TestCutoverUnderConcurrentReads
// on the cluster: views created and switched ON CLUSTER over Distributed
// tables; every view reference of a reader reads one whole generation.
func TestClusterCutoverUnderConcurrentReads(t *testing.T) {
	tg, _ := clusterTarget(t)
	cutoverUnderReads(t, tg)
}

// TestClusterReadersOnEveryNodeFollowCutover checks that a cutover and a
// rollback issued through one node switch the views of every node, and
// that each node's views read the whole cluster (both shards).
func TestClusterReadersOnEveryNodeFollowCutover(t *testing.T) {
	tg, _ := clusterTarget(t)
	ctx := context.Background()
	st := twoGenerations(t, tg)
	markGeneration(t, tg, 1)
	markGeneration(t, tg, 2)
	for _, step := range []struct {
		name string
		do   func() error
		want int
	}{
		{"cutover to 2", func() error { return st.Cutover(ctx, 2) }, 2},
		{"rollback to 1", func() error { _, err := st.Rollback(ctx); return err }, 1},
	} {
		if err := step.do(); err != nil {
			t.Fatalf("%s: %v", step.name, err)
		}
		for i := range 4 {
			q, _ := newQueries(t, nodeConfig(tg.cfg, i))
			sum, err := q.Summary(ctx, analytics.Filter{})
			if err != nil {
				t.Fatalf("%s: node %d: %v", step.name, i, err)
			}
			if sum.Lines != int64(step.want+1) {
				t.Errorf("%s: node %d reads %d lines, want %d (generation %d, both shards)", step.name, i, sum.Lines, step.want+1, step.want)
			}
		}
	}
}

// TestClusterRealFileExactReplicaKilled writes every event of the real file
// (51,797) through the Sink on the cluster, SIGKILLs one replica of shard
// 2 a third of the way in and starts it again two thirds in; writes that
// fail while the cluster notices are retried, as the consumer runtime
// does. Every dashboard figure must be exact, the killed replica must catch
// up with its twin (same rows in every table), and a second write of every
// event must change nothing.
func TestClusterRealFileExactReplicaKilled(t *testing.T) {
	tg, c := clusterTarget(t)
	events := testfixture.RealEvents(t)
	exp := testfixture.ExpectedFromCSV(t)
	s := newSink(t, tg.cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	recs := records(events)
	const batch = 2000
	var retries atomic.Int64
	killed := false
	t.Cleanup(func() {
		if killed {
			c.Node(t, "start", "clickhouse-s2r1")
		}
	})
	start := time.Now()
	for i := 0; i < len(recs); i += batch {
		switch {
		case i >= len(recs)/3 && !killed && i < 2*len(recs)/3:
			c.Node(t, "kill", "clickhouse-s2r1")
			killed = true
		case i >= 2*len(recs)/3 && killed:
			c.Node(t, "start", "clickhouse-s2r1")
			killed = false
		}
		end := min(i+batch, len(recs))
		for {
			err := s.Write(ctx, recs[i:end])
			if err == nil {
				break
			}
			if ctx.Err() != nil {
				t.Fatalf("Write records %d..%d: %v", i, end, errors.Join(err, ctx.Err()))
			}
			retries.Add(1)
			t.Logf("Write records %d..%d failed, retrying: %v", i, end, err)
			time.Sleep(200 * time.Millisecond) // the consumer runtime's backoff, shortened
		}
	}
	t.Logf("wrote %d events in %s with %d retried batches", len(events), time.Since(start), retries.Load())

	syncReplicas(t, tg.cfg, 2, 3)
	q, _ := newQueries(t, tg.cfg)
	checkAll(t, q, exp)
	checkFilters(t, q, exp)
	checkStatuses(t, tg.cfg, exp)

	writeAll(t, s, events, 7777)
	syncReplicas(t, tg.cfg, 2, 3)
	checkAll(t, q, exp)
	checkStatuses(t, tg.cfg, exp)
}

// syncReplicas waits until replicas i and j (indexes into the cluster's
// addresses, one shard) hold the same rows in every table of generation 1.
func syncReplicas(t *testing.T, cfg analytics.Config, i, j int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	counts := func(k int) string {
		conn, err := analytics.Open(nodeConfig(cfg, k))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		var out []string
		for _, table := range []string{"order_lines_g1_local", "orders_g1_local", "order_status_g1_local"} {
			name := "`" + cfg.Database + "`.`" + table + "`"
			if err := conn.Exec(ctx, "SYSTEM SYNC REPLICA "+name); err != nil {
				t.Fatalf("node %d: SYSTEM SYNC REPLICA %s: %v", k, name, err)
			}
			var n uint64
			if err := conn.QueryRow(ctx, "SELECT count() FROM "+name+" FINAL").Scan(&n); err != nil {
				t.Fatalf("node %d: count %s: %v", k, name, err)
			}
			out = append(out, fmt.Sprintf("%s=%d", table, n))
		}
		return strings.Join(out, " ")
	}
	a, b := counts(i), counts(j)
	if a != b {
		t.Fatalf("replicas %d and %d differ after SYSTEM SYNC REPLICA: %s vs %s", i, j, a, b)
	}
	t.Logf("replicas %d and %d agree: %s", i, j, a)
}

// TestClusterFaultsWhileConsuming runs three analytics daemons of one
// consumer group (static instance ids) from a topic of every event of the
// real file (51,797, replication factor 3) into the ClickHouse cluster and,
// while they consume: SIGKILLs the broker leading most partitions; stops
// one daemon and starts a new instance in its place; stops every Kafka node
// and every ClickHouse server and starts them all again, the killed broker
// with them (the daemons keep running). Every dashboard figure must then be
// exact, every replica in sync with its twin.
func TestClusterFaultsWhileConsuming(t *testing.T) {
	tg, c := clusterTarget(t)
	events := testfixture.RealEvents(t)
	exp := testfixture.ExpectedFromCSV(t)
	_, lines, _ := expectedOf(t, events)
	topic := testfixture.ProduceTopic(t, c.KafkaBrokers, events)
	adm := admin(t, c.KafkaBrokers)
	deleteTopicAtCleanup(t, adm, topic+".dlq")
	group := testenv.Name("analytics")
	q, _ := newQueries(t, tg.cfg)
	if err := newSink(t, tg.cfg).Store().Migrate(context.Background()); err != nil {
		t.Fatal(err)
	}

	// Once half the events are written, every daemon's writes wait until
	// the whole cluster is down: the faults then always happen mid-stream,
	// however fast the machine.
	hold := testfixture.NewWriteGate(int64(len(events) / 2))
	daemons := make([]*daemon, 3)
	start := func(i int) {
		cfg := consumerConfig(c.KafkaBrokers, topic, group)
		cfg.BatchMaxRecords = 500
		cfg.InstanceID = fmt.Sprintf("analytics-%d", i)
		daemons[i] = startDaemon(t, cfg, testfixture.GatedSink{Sink: newSink(t, tg.cfg), Gate: hold})
	}
	for i := range daemons {
		start(i)
	}
	// progress waits until the read model holds at least frac of the lines.
	progress := func(frac float64) int64 {
		t.Helper()
		deadline := time.Now().Add(5 * time.Minute)
		for {
			got, err := q.Summary(context.Background(), analytics.Filter{})
			if err == nil && float64(got.Lines) >= frac*float64(lines) {
				return got.Lines
			}
			if time.Now().After(deadline) {
				t.Fatalf("read model below %.0f%% of %d lines after 5 min: %+v, %v", frac*100, lines, got, err)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	began := time.Now()
	progress(0.05)
	leader := c.LeaderOfMost(t, adm, topic)
	c.Node(t, "kill", leader)
	t.Cleanup(func() { c.Node(t, "up", "kafka", "clickhouse") }) // whatever happens below
	if err := daemons[1].stop(); err != nil {
		t.Errorf("daemon 1: %v", err)
	}
	start(1)
	at := progress(0.15)
	t.Logf("killed %s (leader of most partitions) and replaced daemon 1; %d lines", leader, at)
	// Every node of Kafka and ClickHouse goes down, the killed broker
	// stays down until all come back: the daemons cannot progress
	// meanwhile, so this always happens mid-stream.
	c.Node(t, "down", "kafka", "clickhouse")
	hold.Open() // the held writes now meet a cluster that is down, and retry
	c.Node(t, "up", "kafka", "clickhouse")
	t.Logf("whole Kafka and ClickHouse cluster stopped and started (%s with it) after %d lines", leader, at)
	if at >= lines {
		t.Fatalf("the daemons finished before the whole-cluster stop (%d lines): nothing tested", at)
	}

	testfixture.WaitDrained(t, adm, group, topic, 5*time.Minute)
	for i, d := range daemons {
		if err := d.stop(); err != nil {
			t.Errorf("daemon %d: %v", i, err)
		}
	}
	t.Logf("consumed %d events through the faults in %s", len(events), time.Since(began))
	syncReplicas(t, tg.cfg, 0, 1)
	syncReplicas(t, tg.cfg, 2, 3)
	checkAll(t, q, exp)
	checkStatuses(t, tg.cfg, exp)
}
