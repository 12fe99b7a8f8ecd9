package relay

import (
	"context"
	"errors"
	"testing"

	"github.com/orderstream/orderstream/internal/testfixture"
	"github.com/orderstream/orderstream/producer/topic"
	"github.com/twmb/franz-go/pkg/kadm"
)

// TestClusterLeaderBrokerKilledWhileRelaying relays 50,000 outbox rows
// (10,000 orders of 5 events, inserted in batches while the relay streams)
// to a topic of replication factor 3 on the cluster profile, SIGKILLs the
// broker leading most of its partitions mid-stream and starts it again
// later. Every row must be in Kafka once — nothing lost, no duplicate
// record — per order in version order.
func TestClusterLeaderBrokerKilledWhileRelaying(t *testing.T) {
	c := testfixture.ClusterProfile(t)
	e := newEnv(t)
	ctx := context.Background()
	run := e.start(t, e.config())
	waitState(t, run.r, StateStreaming)
	adm := kadm.NewClient(e.kafka)
	info, err := topic.Check(ctx, adm, e.topic)
	if err != nil || info.Replicas != 3 || info.MinInsync != "2" {
		t.Fatalf("topic created by the relay: %+v %v, want 3 replicas, min.insync.replicas 2", info, err)
	}

	const orders, perOrder, chunk = 10000, 5, 1000
	var leader string
	restarted := true
	t.Cleanup(func() {
		if !restarted {
			c.Node(t, "start", leader)
		}
	})
	for first := 1; first <= orders; first += chunk {
		if err := insertOrders(ctx, e.pool, "K", first, first+chunk-1, perOrder); err != nil {
			t.Fatal(err)
		}
		switch first {
		case 3*chunk + 1: // 30 % written: kill the leader of most partitions
			e.waitRecords(t, int64(2*chunk*perOrder))
			leader = c.LeaderOfMost(t, adm, e.topic)
			c.Node(t, "kill", leader)
			restarted = false
		case 7*chunk + 1:
			c.Node(t, "start", leader)
			restarted = true
		}
	}
	e.waitRecords(t, orders*perOrder)
	if err := run.shutdown(t); err != nil {
		t.Fatal(err)
	}
	if events, dups := e.verify(t); events != orders*perOrder || dups != 0 {
		t.Fatalf("events %d duplicates %d, want %d and 0", events, dups, orders*perOrder)
	}
}

// TestClusterRefusesUnderReplicatedTopic: on three brokers the relay
// refuses a topic of replication factor 1 (ErrUnderReplicated), and starts
// on it when AllowUnderReplicated says the operator accepts it.
func TestClusterRefusesUnderReplicatedTopic(t *testing.T) {
	testfixture.ClusterProfile(t)
	e := newEnv(t)
	adm := kadm.NewClient(e.kafka)
	name := e.topic + "_rf1"
	if _, _, err := topic.Provision(context.Background(), adm, topic.Spec{Name: name, Partitions: 3, ReplicationFactor: 1}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _, _ = adm.DeleteTopics(context.Background(), name) })
	for _, allow := range []bool{false, true} {
		cfg := e.config()
		cfg.Topic, cfg.CreateTopic, cfg.AllowUnderReplicated = name, false, allow
		cfg.Slot = uniqueSlot(e.slot)
		run := e.start(t, cfg)
		if !allow {
			if err := run.shutdownAfterExit(t); !errors.Is(err, topic.ErrUnderReplicated) {
				t.Fatalf("err = %v, want ErrUnderReplicated", err)
			}
			continue
		}
		waitState(t, run.r, StateStreaming)
		if err := run.shutdown(t); err != nil {
			t.Fatal(err)
		}
	}
}
