package topic_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/orderstream/orderstream/internal/testenv"
	"github.com/orderstream/orderstream/internal/testfixture"
	"github.com/orderstream/orderstream/producer/topic"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// TestClusterProvisionReplicates: on the cluster profile's three brokers a
// topic provisioned with the default spec gets three replicas and
// min.insync.replicas=2 and passes RequireReplicated; one created with
// replication factor 1 is refused with ErrUnderReplicated.
func TestClusterProvisionReplicates(t *testing.T) {
	c := testfixture.ClusterProfile(t)
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.KafkaBrokers...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	name := testenv.Name("replicated")
	t.Cleanup(func() { _, _ = adm.DeleteTopics(context.Background(), name, name+"_rf1") })
	info, created, err := topic.Provision(ctx, adm, topic.Spec{Name: name, Partitions: 3})
	if err != nil || !created {
		t.Fatalf("Provision = %+v, created %v, %v", info, created, err)
	}
	if info.Replicas != 3 || info.MinInsync != "2" || info.Brokers != 3 {
		t.Errorf("Provision on the cluster = %d replicas, min.insync.replicas %s, %d brokers; want 3, 2, 3", info.Replicas, info.MinInsync, info.Brokers)
	}
	if err := topic.RequireReplicated(info); err != nil {
		t.Errorf("RequireReplicated: %v", err)
	}

	info, _, err = topic.Provision(ctx, adm, topic.Spec{Name: name + "_rf1", Partitions: 3, ReplicationFactor: 1})
	if err != nil {
		t.Fatal(err)
	}
	if err := topic.RequireReplicated(info); !errors.Is(err, topic.ErrUnderReplicated) {
		t.Errorf("RequireReplicated(replication factor 1 on 3 brokers) = %v, want ErrUnderReplicated", err)
	}
}
