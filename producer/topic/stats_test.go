package topic

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/orderstream/orderstream/internal/testenv"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

func rec(order string, version int, id string) *kgo.Record {
	return &kgo.Record{Key: []byte(order), Value: []byte(`{}`), Headers: []kgo.RecordHeader{
		{Key: "ce_id", Value: []byte(id)}, {Key: "ce_type", Value: []byte("order.placed")},
		{Key: "aggregate_version", Value: []byte(fmt.Sprint(version))},
	}}
}

// withSchemaVersion adds the schema_version header to r.
func withSchemaVersion(r *kgo.Record, v string) *kgo.Record {
	r.Headers = append(r.Headers, kgo.RecordHeader{Key: "schema_version", Value: []byte(v)})
	return r
}

func TestReadStatsChecks(t *testing.T) {
	brokers := testenv.KafkaBrokers(t)
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	ctx := context.Background()
	tests := []struct {
		name       string
		give       []*kgo.Record
		wantOK     bool
		wantEvents int64
		wantOrders int
		// wantVersions, when set, is the count by schema_version header.
		wantVersions map[string]int64
	}{
		{name: "clean", give: []*kgo.Record{rec("a", 1, "e1"), rec("a", 2, "e2"), rec("b", 1, "e3")}, wantOK: true, wantEvents: 3, wantOrders: 2},
		{name: "gap", give: []*kgo.Record{rec("a", 1, "e1"), rec("a", 3, "e3")}, wantEvents: 2, wantOrders: 1},
		{name: "out of order", give: []*kgo.Record{rec("a", 2, "e2"), rec("a", 1, "e1")}, wantEvents: 2, wantOrders: 1},
		{name: "duplicate", give: []*kgo.Record{rec("a", 1, "e1"), rec("a", 1, "e1")}, wantEvents: 2, wantOrders: 1},
		{name: "schema versions", give: []*kgo.Record{rec("a", 1, "e1"), withSchemaVersion(rec("a", 2, "e2"), "1"), withSchemaVersion(rec("a", 3, "e3"), "2")},
			wantOK: true, wantEvents: 3, wantOrders: 1, wantVersions: map[string]int64{"unknown": 1, "1": 1, "2": 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			name := testenv.Name("stats")
			if _, _, err := Provision(ctx, adm, Spec{Name: name, Partitions: 3}); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _, _ = adm.DeleteTopics(context.Background(), name) })
			for _, r := range tt.give {
				r.Topic = name
			}
			if err := cl.ProduceSync(ctx, tt.give...).FirstErr(); err != nil {
				t.Fatal(err)
			}
			s, err := ReadStats(ctx, cl, brokers, name)
			if err != nil {
				t.Fatal(err)
			}
			if s.OK() != tt.wantOK || s.Events != tt.wantEvents || s.Orders != tt.wantOrders {
				t.Fatalf("OK %v events %d orders %d, want %v %d %d; checks %+v", s.OK(), s.Events, s.Orders, tt.wantOK, tt.wantEvents, tt.wantOrders, s.Checks)
			}
			if tt.wantVersions != nil && fmt.Sprint(s.EventsBySchemaVersion) != fmt.Sprint(tt.wantVersions) {
				t.Fatalf("events by schema version %v, want %v", s.EventsBySchemaVersion, tt.wantVersions)
			}
		})
	}
}

func TestCheckMissingTopic(t *testing.T) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(testenv.KafkaBrokers(t)...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if _, err := Check(context.Background(), kadm.NewClient(cl), testenv.Name("missing")); !errors.Is(err, ErrNotFound) {
		t.Fatalf("err = %v, want ErrNotFound", err)
	}
}

func TestSpecValidate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		give    Spec
		wantErr bool
	}{
		{name: "defaults", give: Spec{Name: "orders"}},
		{name: "broker default replication", give: Spec{Name: "orders", ReplicationFactor: -1}},
		{name: "no name", give: Spec{}, wantErr: true},
		{name: "negative partitions", give: Spec{Name: "o", Partitions: -2}, wantErr: true},
		{name: "bad replication", give: Spec{Name: "o", ReplicationFactor: -3}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if err := tt.give.Validate(); (err != nil) != tt.wantErr {
				t.Fatalf("Validate() = %v, wantErr %v", err, tt.wantErr)
			}
		})
	}
}

func TestInfoProblems(t *testing.T) {
	t.Parallel()
	ok := Info{Name: "o", RetentionMs: "-1", RetentionBytes: "-1", CleanupPolicy: "delete"}
	if p := ok.Problems(); len(p) != 0 || RequireReplayable(ok) != nil {
		t.Fatalf("infinite retention: problems %v", p)
	}
	bad := Info{Name: "o", RetentionMs: "604800000", RetentionBytes: "-1", CleanupPolicy: "compact"}
	if p := bad.Problems(); len(p) != 2 || !errors.Is(RequireReplayable(bad), ErrNotReplayable) {
		t.Fatalf("finite+compact: problems %v", p)
	}
}

func TestInfoReplicationProblems(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		give Info
		want int
	}{
		{name: "single broker, one replica", give: Info{Brokers: 1, Replicas: 1, MinInsync: "1"}},
		{name: "cluster, three replicas, two in sync", give: Info{Brokers: 3, Replicas: 3, MinInsync: "2"}},
		{name: "cluster, one replica", give: Info{Brokers: 3, Replicas: 1, MinInsync: "1"}, want: 1},
		{name: "cluster, three replicas, one in sync", give: Info{Brokers: 3, Replicas: 3, MinInsync: "1"}, want: 1},
		{name: "two brokers, two replicas, one in sync", give: Info{Brokers: 2, Replicas: 2, MinInsync: "1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p := tt.give.ReplicationProblems()
			if len(p) != tt.want {
				t.Fatalf("ReplicationProblems() = %q, want %d problems", p, tt.want)
			}
			if err := RequireReplicated(tt.give); (err != nil) != (tt.want > 0) || (err != nil && !errors.Is(err, ErrUnderReplicated)) {
				t.Fatalf("RequireReplicated() = %v", err)
			}
		})
	}
}
