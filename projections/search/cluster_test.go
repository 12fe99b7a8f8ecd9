package search

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/orderstream/orderstream/consumers"
	"github.com/orderstream/orderstream/internal/testenv"
	"github.com/orderstream/orderstream/internal/testfixture"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// clusterGet GETs path from the first node of urls (comma-separated) that
// answers 200 and returns the body.
func clusterGet(urls, path string) (string, error) {
	var errs []error
	hc := http.Client{Timeout: 10 * time.Second}
	for _, u := range strings.Split(urls, ",") {
		resp, err := hc.Get(u + path)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err == nil && resp.StatusCode != http.StatusOK {
			err = fmt.Errorf("GET %s%s: %s: %s", u, path, resp.Status, b)
		}
		if err != nil {
			errs = append(errs, err)
			continue
		}
		return string(b), nil
	}
	return "", errors.Join(errs...)
}

// waitGreen polls the cluster health of the indexes behind prefix, on any
// node of urls, until it is green (every primary and replica assigned and
// started) or timeout passes.
func waitGreen(t *testing.T, urls, prefix string, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var last string
	for time.Now().Before(deadline) {
		body, err := clusterGet(urls, "/_cluster/health/"+prefix+"*")
		if err == nil {
			last = body
			if strings.Contains(body, `"status":"green"`) {
				return
			}
		} else {
			last = err.Error()
		}
		time.Sleep(250 * time.Millisecond)
	}
	t.Fatalf("indexes %s* not green within %s: %s", prefix, timeout, last)
}

// clusterManager returns the name of the elected cluster manager
// (_cat/cluster_manager), e.g. "opensearch-1".
func clusterManager(t *testing.T, urls string) string {
	t.Helper()
	body, err := clusterGet(urls, "/_cat/cluster_manager?h=node")
	name := strings.TrimSpace(body)
	if err != nil || !strings.HasPrefix(name, "opensearch-") {
		t.Fatalf("elected cluster manager: %q, %v", name, err)
	}
	return name
}

// clusterDo sends method path to the first node of urls that answers 2xx.
func clusterDo(urls, method, path string) error {
	var errs []error
	hc := http.Client{Timeout: 60 * time.Second}
	for _, u := range strings.Split(urls, ",") {
		req, err := http.NewRequest(method, u+path, nil)
		if err != nil {
			return err
		}
		resp, err := hc.Do(req)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode/100 == 2 {
			return nil
		}
		errs = append(errs, fmt.Errorf("%s %s%s: %s: %s", method, u, path, resp.Status, b))
	}
	return errors.Join(errs...)
}

// waitVoters waits until the cluster's voting configuration holds n nodes
// (last_committed_config): only then does losing one of three leave a
// quorum.
func waitVoters(t *testing.T, urls string, n int) {
	t.Helper()
	var last string
	for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); time.Sleep(250 * time.Millisecond) {
		body, err := clusterGet(urls, "/_cluster/state/metadata?filter_path=metadata.cluster_coordination.last_committed_config")
		if err != nil {
			last = err.Error()
			continue
		}
		last = body
		var st struct {
			Metadata struct {
				Coordination struct {
					Voters []string `json:"last_committed_config"`
				} `json:"cluster_coordination"`
			} `json:"metadata"`
		}
		if json.Unmarshal([]byte(body), &st) == nil && len(st.Metadata.Coordination.Voters) == n {
			return
		}
	}
	t.Fatalf("voting configuration not %d nodes within a minute: %s", n, last)
}

// dataManager makes sure the elected cluster manager also holds data, so
// that killing it loses a manager and shard copies at once: if the
// cluster-manager-only node was elected, a voting exclusion makes it step
// down (a data node is elected) and is then lifted. Returns the manager.
func dataManager(t *testing.T, urls string) string {
	t.Helper()
	m := clusterManager(t, urls)
	roles, err := clusterGet(urls, "/_cat/nodes?h=name,node.role")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(roles, "\n") {
		if f := strings.Fields(line); len(f) == 2 && f[0] == m && strings.Contains(f[1], "d") {
			return m
		}
	}
	if err := clusterDo(urls, http.MethodPost, "/_cluster/voting_config_exclusions?node_names="+m); err != nil {
		t.Fatalf("make %s step down: %v", m, err)
	}
	if err := clusterDo(urls, http.MethodDelete, "/_cluster/voting_config_exclusions?wait_for_removal=false"); err != nil {
		t.Fatalf("lift the voting exclusion of %s: %v", m, err)
	}
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(250 * time.Millisecond) {
		body, err := clusterGet(urls, "/_cat/cluster_manager?h=node")
		if now := strings.TrimSpace(body); err == nil && now != m && strings.HasPrefix(now, "opensearch-") {
			t.Logf("%s (no data) stepped down; cluster manager now %s", m, now)
			waitVoters(t, urls, 3) // m votes again
			return now
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s still the cluster manager a minute after its voting exclusion: %q, %v", m, body, err)
		}
	}
}

// checkShardCopies checks that every shard of the indexes behind prefix
// has exactly two started copies (a primary and its replica) holding the
// same number of documents.
func checkShardCopies(t *testing.T, urls, prefix string) {
	t.Helper()
	body, err := clusterGet(urls, "/_cat/shards/"+prefix+"*?h=index,shard,prirep,state,docs,node")
	if err != nil {
		t.Fatal(err)
	}
	docs := map[string][]string{}
	for _, line := range strings.Split(strings.TrimSpace(body), "\n") {
		f := strings.Fields(line)
		if len(f) >= 5 && f[3] == "STARTED" {
			key := f[0] + "/" + f[1]
			docs[key] = append(docs[key], f[2]+"="+f[4])
		}
	}
	if len(docs) == 0 {
		t.Fatalf("no started shard behind %s*: %s", prefix, body)
	}
	for shard, copies := range docs {
		if len(copies) != 2 || strings.Split(copies[0], "=")[1] != strings.Split(copies[1], "=")[1] {
			t.Errorf("shard %s: copies %v, want a primary and a replica with the same document count", shard, copies)
		}
	}
	t.Logf("shard copies (prirep=docs): %v", docs)
}

// TestClusterFaultsWhileIndexing runs two search daemons of one consumer
// group (static instance ids, the consumer runtime and the Sink) from a
// topic of every event of the real file (51,797, on the Kafka cluster)
// into the three-node search cluster, with one replica per shard. Their
// writes are held at a third of the stream while the elected cluster
// manager, a data node too (see dataManager), is SIGKILLed; they go on
// without that node (another manager elected, the replicas of its
// primaries promoted) while daemon 1 is replaced by a new instance, are
// held again at two thirds while the node starts and rejoins, and the last
// third is indexed while its copies recover. Every document and facet must
// then be exact, the indexes green and both copies of every shard hold
// every document.
func TestClusterFaultsWhileIndexing(t *testing.T) {
	c := testfixture.ClusterProfile(t)
	eng, err := NewEngine(EngineConfig{Kind: EngineOpenSearch, URL: c.SearchURL})
	if err != nil {
		t.Fatal(err)
	}
	cfg := Config{Engine: eng, Prefix: testenv.Name("srch"), Shards: 2, Replicas: 1}
	admin, err := NewAdmin(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	if _, err := admin.Setup(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := admin.DropAll(context.Background()); err != nil {
			t.Logf("drop read model %s: %v", cfg.Prefix, err)
		}
	})
	waitGreen(t, c.SearchURL, cfg.Prefix, time.Minute)

	events := testfixture.RealEvents(t)
	exp := testfixture.ExpectedFromCSV(t)
	topic := testfixture.ProduceTopic(t, c.KafkaBrokers, events)
	kc, err := kgo.NewClient(kgo.SeedBrokers(c.KafkaBrokers...))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(kc.Close)
	adm := kadm.NewClient(kc)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_, _ = adm.DeleteTopics(ctx, consumers.DLQTopicFor(topic))
	})
	group := testenv.Name("search")

	n := int64(len(events))
	gate := testfixture.NewWriteGate(n / 3)
	var sinks []*Sink
	daemons := make([]*daemon, 2)
	start := func(i int) {
		sink, err := NewSink(SinkConfig{Config: cfg})
		if err != nil {
			t.Fatal(err)
		}
		d := startMember(t, consumers.Config{Brokers: c.KafkaBrokers, Topic: topic, Group: group,
			Projection: "search", InstanceID: fmt.Sprintf("search-%d", i), BatchMaxRecords: 2000,
			BatchMaxWait: 200 * time.Millisecond, RetryInitial: 100 * time.Millisecond, RetryMax: 2 * time.Second,
			// A replaced member's held batch is consumed again by its successor:
			// no need to wait the default 30 s for a cluster without a manager.
			ShutdownTimeout: 5 * time.Second},
			testfixture.GatedSink{Sink: sink, Gate: gate})
		daemons[i] = d
		sinks = append(sinks, sink)
	}
	began := time.Now()
	since := func() time.Duration { return time.Since(began).Round(100 * time.Millisecond) }
	start(0)
	start(1)

	at := gate.WaitHeld(t, 5*time.Minute)
	waitVoters(t, c.SearchURL, 3)
	manager := dataManager(t, c.SearchURL)
	c.Node(t, "kill", manager)
	killed := true
	t.Cleanup(func() {
		if killed {
			c.Node(t, "start", manager)
		}
	})
	t.Logf("%s: writes held after %d records: killed %s (the elected cluster manager)", since(), at, manager)
	gate.HoldAt(2 * n / 3)
	daemons[1].shutdown(t)
	start(1)
	t.Logf("%s: replaced daemon 1 after %d records", since(), gate.Written())

	at = gate.WaitHeld(t, 5*time.Minute)
	t.Logf("%s: %d records written without %s; cluster manager now %s", since(), at, manager, clusterManager(t, c.SearchURL))
	c.Node(t, "start", manager)
	killed = false
	gate.Open()
	t.Logf("%s: %s back", since(), manager)
	if at >= n {
		t.Fatalf("the daemons wrote every record (%d) before %s came back: nothing tested", at, manager)
	}

	// Done when every order is indexed at its last version (the snapshots
	// of waitApplied read every document: poll the cheap signs of the end
	// first), and every record is committed.
	for deadline := time.Now().Add(5 * time.Minute); gate.Written() < n && groupLag(adm, group, topic) != 0; time.Sleep(250 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("after 5 min: %d records written, group lag %d", gate.Written(), groupLag(adm, group, topic))
		}
	}
	waitApplied(t, eng, admin, finalVersions(events), 5*time.Minute)
	t.Logf("%s: every order at its last version", since())
	testfixture.WaitDrained(t, adm, group, topic, 2*time.Minute)
	for _, d := range daemons {
		d.shutdown(t)
	}
	var total Stats
	for _, s := range sinks {
		st := s.Stats()
		total.Documents += st.Documents
		total.Conflicts += st.Conflicts
		total.Stale += st.Stale
		total.Rejected += st.Rejected
		total.Retries += st.Retries
	}
	t.Logf("indexed %d events through the faults in %s (%d records written), sinks: %+v",
		n, time.Since(began).Round(time.Millisecond), gate.Written(), total)
	if total.Rejected != 0 {
		t.Errorf("%d records rejected, want none", total.Rejected)
	}

	waitGreen(t, c.SearchURL, cfg.Prefix, 3*time.Minute)
	t.Logf("%s: green", since())
	if err := admin.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	checkAgainstCSV(t, exp, snapshot(t, eng, cfg.Names()))
	q, err := NewQuery(cfg)
	if err != nil {
		t.Fatal(err)
	}
	checkFacets(t, q, exp)
	checkShardCopies(t, c.SearchURL, cfg.Prefix)
}

// groupLag returns how many records of topic group has not committed, or -1
// when Kafka does not say.
func groupLag(adm *kadm.Client, group, topic string) int64 {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	lags, err := adm.Lag(ctx, group)
	if err != nil {
		return -1
	}
	l := lags[group]
	if l.Error() != nil {
		return -1
	}
	return l.Lag.TotalByTopic()[topic].Lag
}
