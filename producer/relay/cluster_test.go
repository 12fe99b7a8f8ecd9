package relay

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/orderstream/orderstream/internal/testfixture"
	"github.com/orderstream/orderstream/producer/topic"
	"github.com/orderstream/orderstream/schemas"
	"github.com/twmb/franz-go/pkg/kadm"
)

// Shares of the real file's events in TestClusterLeaderBrokerKilledWhileRelaying.
const (
	clusterChunk        = 4000 // events per outbox transaction
	clusterKillWritten  = 0.40 // written, and
	clusterKillRelayed  = 0.30 // relayed when the leader is killed
	clusterRestartShare = 0.70 // written when it is started again
	clusterRejoinShare  = 0.90 // written before it is healthy again
)

// TestClusterLeaderBrokerKilledWhileRelaying relays every event of the real
// file (testfixture.RealEvents: 51,797) to a topic of replication factor 3
// on the cluster profile. The events are written into the outbox
// (testfixture.InsertOutbox) in transactions of clusterChunk events while
// the relay streams. Once clusterKillWritten of them are written and
// clusterKillRelayed are in Kafka (so about a tenth are on their way), the
// broker leading most of the topic's partitions is SIGKILLed; the relay
// must go on with the other two (every event written before the kill is
// relayed before the restart). The broker is started again once
// clusterRestartShare of them were written; events up to clusterRejoinShare
// are written while it starts, the rest once it is healthy (a follower in
// sync again). Then the topic must hold:
//   - every event exactly once, by event id, its value byte for byte the
//     envelope written to the outbox (nothing lost, no duplicate record);
//   - each order's events in one partition, in version order;
//   - the figures of the CSV oracle (testfixture.ExpectedFromCSV), computed
//     from the events the topic holds by Expected.CheckEvents: events per
//     type, every order.placed against its document, net, gross and
//     returns exact.
func TestClusterLeaderBrokerKilledWhileRelaying(t *testing.T) {
	c := testfixture.ClusterProfile(t)
	events := testfixture.RealEvents(t)
	exp := testfixture.ExpectedFromCSV(t)
	begin := time.Now()
	written, err := testfixture.EnvelopesJSON(events) // validated once, before the clock of the run starts
	if err != nil {
		t.Fatal(err)
	}
	var bytesWritten int
	want := make(map[string][]byte, len(events))
	for i, ev := range events {
		want[ev.EventID.String()] = written[i]
		bytesWritten += len(written[i])
	}
	t.Logf("%d events, %d bytes of envelopes, validated in %s", len(events), bytesWritten, time.Since(begin).Round(time.Millisecond))

	e := newEnv(t)
	ctx := context.Background()
	run := e.start(t, e.config())
	waitState(t, run.r, StateStreaming)
	adm := kadm.NewClient(e.kafka)
	info, err := topic.Check(ctx, adm, e.topic)
	if err != nil || info.Replicas != 3 || info.MinInsync != "2" {
		t.Fatalf("topic created by the relay: %+v %v, want 3 replicas, min.insync.replicas 2", info, err)
	}

	n := len(events)
	killWritten, killRelayed := int(float64(n)*clusterKillWritten), int64(float64(n)*clusterKillRelayed)
	restartAt := int(float64(n) * clusterRestartShare)
	var (
		leader     string         // the node killed, "" until then
		restarting bool           // the start of the killed broker began
		started    sync.WaitGroup // it ended, with startErr
		startErr   error
		rejoined   bool // it is healthy again
	)
	t.Cleanup(func() {
		started.Wait()
		if leader != "" && !restarting {
			c.Node(t, "start", leader)
		}
	})
	rejoinAt := int(float64(n) * clusterRejoinShare)
	start := time.Now()
	since := func() time.Duration { return time.Since(start).Round(time.Millisecond) }
	var writtenAtKill int
	for first := 0; first < n; first += clusterChunk {
		last := min(first+clusterChunk, n)
		if restarting && !rejoined && last > rejoinAt { // wait until the broker is back
			started.Wait()
			if startErr != nil {
				t.Fatal(startErr)
			}
			rejoined = true
			t.Logf("%s healthy again after %s: %d events written, %d relayed", leader, since(), first, endOffsets(t, adm, e.topic))
		}
		if err := testfixture.InsertOutbox(ctx, e.pool, events[first:last]); err != nil {
			t.Fatal(err)
		}
		switch {
		case leader == "" && last >= killWritten:
			e.waitRecords(t, killRelayed)
			leader = c.LeaderOfMost(t, adm, e.topic)
			relayed := endOffsets(t, adm, e.topic)
			c.Node(t, "kill", leader)
			writtenAtKill = last
			t.Logf("%s killed after %s: %d events written, %d relayed", leader, since(), last, relayed)
		case leader != "" && !restarting && last >= restartAt:
			// Every event written before the kill, of every partition, is
			// relayed without the broker: its partitions' leadership moved.
			e.waitRecords(t, int64(writtenAtKill))
			relayed := endOffsets(t, adm, e.topic)
			restarting = true
			started.Add(1)
			go func() { // the relay goes on while the broker starts and catches up
				defer started.Done()
				_, startErr = c.Script("start", leader)
			}()
			t.Logf("%s starting after %s: %d events written, %d relayed", leader, since(), last, relayed)
		}
	}
	if !rejoined {
		t.Fatalf("the leader was not killed (%q) and restarted during the run", leader)
	}
	e.waitRecords(t, int64(n))
	relayed := since()
	t.Logf("%d events relayed in %s", n, relayed)
	if err := run.shutdown(t); err != nil {
		t.Fatal(err)
	}
	checked := time.Now()

	byOrder := e.readTopic(t)
	seen := make(map[string]int, n)
	read := make([]schemas.Envelope, 0, n)
	var duplicates, differ int
	for order, recs := range byOrder {
		for _, r := range recs {
			if r.partition != recs[0].partition {
				t.Errorf("order %s in partitions %d and %d", order, recs[0].partition, r.partition)
			}
			if seen[r.eventID]++; seen[r.eventID] > 1 {
				duplicates++
				continue
			}
			w, ok := want[r.eventID]
			if !ok {
				t.Fatalf("order %s: event %s was never written", order, r.eventID)
			}
			if !bytes.Equal(r.value, w) {
				if differ++; differ <= 3 {
					t.Errorf("event %s of order %s: value differs from the envelope written\n got %.200s\nwant %.200s", r.eventID, order, r.value, w)
				}
			}
			ev, err := schemas.ParseEnvelope(r.value)
			if err != nil {
				t.Fatalf("event %s of order %s: %v", r.eventID, order, err)
			}
			read = append(read, ev)
		}
	}
	if duplicates != 0 || differ != 0 || len(seen) != n {
		t.Fatalf("topic holds %d distinct events of %d written, %d duplicate records, %d values not as written", len(seen), n, duplicates, differ)
	}
	if err := exp.CheckEvents(read); err != nil {
		t.Fatalf("events in the topic against the CSV oracle: %v", err)
	}
	t.Logf("relayed in %s, checked in %s; %s since the events were validated", relayed,
		time.Since(checked).Round(time.Millisecond), time.Since(begin).Round(time.Millisecond))
}

// TestClusterRefusesUnderReplicatedTopic: on three brokers the relay
// refuses a topic of replication factor 1 (ErrUnderReplicated), also when
// AllowFiniteRetention accepts the topic's finite retention, and starts on
// it when AllowUnderReplicated says the operator accepts it, saying so in
// one WARN line: its start's check and its topic watcher's checks (every
// 200 ms here) do not repeat it while nothing changes.
func TestClusterRefusesUnderReplicatedTopic(t *testing.T) {
	testfixture.ClusterProfile(t)
	e := newEnv(t)
	adm := kadm.NewClient(e.kafka)
	name := e.topic + "_rf1"
	if _, _, err := topic.Provision(context.Background(), adm, topic.Spec{Name: name, Partitions: 3, ReplicationFactor: 1}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _, _ = adm.DeleteTopics(context.Background(), name) })
	tests := []struct {
		name                  string
		finite, allowUnder    bool // finite: the topic's retention.ms is set to an hour first
		wantUnderReplicatedOK bool // false: Run fails with ErrUnderReplicated
	}{
		{name: "refused"},
		{name: "refused with a finite retention allowed", finite: true},
		{name: "allowed", finite: true, allowUnder: true, wantUnderReplicatedOK: true},
	}
	for _, tt := range tests {
		if tt.finite {
			ms := "3600000"
			rs, err := adm.AlterTopicConfigs(context.Background(), []kadm.AlterConfig{{Op: kadm.SetConfig, Name: "retention.ms", Value: &ms}}, name)
			for _, r := range rs {
				err = errors.Join(err, r.Err)
			}
			if err != nil {
				t.Fatalf("%s: set retention.ms: %v", tt.name, err)
			}
			for deadline := time.Now().Add(30 * time.Second); ; { // until the brokers report it
				info, err := topic.Check(context.Background(), adm, name)
				if err == nil && info.RetentionMs == ms {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("%s: retention.ms=%s not reported within 30 s: %+v %v", tt.name, ms, info, err)
				}
				time.Sleep(100 * time.Millisecond) // polling a condition with a deadline
			}
		}
		cfg := e.config()
		cfg.Topic, cfg.CreateTopic, cfg.AllowUnderReplicated, cfg.AllowFiniteRetention = name, false, tt.allowUnder, tt.finite
		cfg.Slot = uniqueSlot(e.slot)
		cfg.TopicCheckInterval = 200 * time.Millisecond
		logs := &syncBuffer{}
		run := e.start(t, cfg, WithLogger(slog.New(slog.NewTextHandler(logs, nil))))
		if !tt.wantUnderReplicatedOK {
			if err := run.shutdownAfterExit(t); !errors.Is(err, topic.ErrUnderReplicated) {
				t.Fatalf("%s: err = %v, want ErrUnderReplicated", tt.name, err)
			}
			continue
		}
		waitState(t, run.r, StateStreaming)
		time.Sleep(2 * time.Second) // the watcher's first checks (every 200 ms) after the start's
		warned := strings.Count(logs.String(), "level=WARN msg=\"topic is under-replicated for its cluster")
		if warned != 1 || !strings.Contains(logs.String(), "allowed by --allow-under-replicated") ||
			gaugeOf(t, run.r, "orderstream_relay_topic_replicated") != 0 {
			t.Fatalf("%s: %d WARN lines on the under-replication (want 1), orderstream_relay_topic_replicated %v (want 0); logs:\n%s",
				tt.name, warned, gaugeOf(t, run.r, "orderstream_relay_topic_replicated"), logs.String())
		}
		if err := run.shutdown(t); err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
	}
}

// endOffsets is the sum of topic's end offsets (its records), for the
// log; -1 when they cannot be listed within 10 s (the client's metadata
// may still name a broker just killed).
func endOffsets(t *testing.T, adm *kadm.Client, topic string) int64 {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		ends, err := adm.ListEndOffsets(context.Background(), topic)
		if err == nil {
			err = ends.Error()
		}
		if err == nil {
			var n int64
			ends.Each(func(o kadm.ListedOffset) { n += o.Offset })
			return n
		}
		if time.Now().After(deadline) {
			t.Logf("end offsets of %s: %v", topic, err)
			return -1
		}
		time.Sleep(200 * time.Millisecond) // polling a condition with a deadline
	}
}

// TestClusterRelayWatchesReplication: an operator lowering the live
// topic's min.insync.replicas to 1 on three brokers while the relay
// streams is noticed within the check interval (an ERROR line naming it,
// orderstream_relay_topic_replicated 0) without stopping the relay; raising
// it back to 2 is noticed too.
func TestClusterRelayWatchesReplication(t *testing.T) {
	testfixture.ClusterProfile(t)
	e := newEnv(t)
	run, logs, gauge, waitFor := startWatched(t, e, "orderstream_relay_topic_replicated")
	waitFor("streaming with a replicated topic", func() bool { return run.r.State() == StateStreaming && gauge() == 1 })
	adm := kadm.NewClient(e.kafka)
	setMinInsync := func(v string) {
		t.Helper()
		rs, err := adm.AlterTopicConfigs(context.Background(), []kadm.AlterConfig{{Op: kadm.SetConfig, Name: "min.insync.replicas", Value: &v}}, e.topic)
		for _, r := range rs {
			err = errors.Join(err, r.Err)
		}
		if err != nil {
			t.Fatalf("set min.insync.replicas=%s: %v", v, err)
		}
	}

	setMinInsync("1")
	waitFor("min.insync.replicas=1 reported", func() bool { return gauge() == 0 })
	if !strings.Contains(logs.String(), "level=ERROR") || !strings.Contains(logs.String(), "min.insync.replicas=1 with 3 replicas") {
		t.Fatalf("no ERROR line naming min.insync.replicas=1; logs:\n%s", logs.String())
	}
	if err := insertOrders(context.Background(), e.pool, "W", 1, 10, 2); err != nil {
		t.Fatal(err)
	}
	e.waitRecords(t, 20) // still relaying

	setMinInsync("2")
	waitFor("min.insync.replicas=2 reported", func() bool { return gauge() == 1 })
	if !strings.Contains(logs.String(), "replication fits its cluster again") {
		t.Fatalf("no line saying the replication fits again; logs:\n%s", logs.String())
	}
	if err := run.shutdown(t); err != nil {
		t.Fatal(err)
	}
}
