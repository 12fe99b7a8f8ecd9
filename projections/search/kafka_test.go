package search

import (
	"context"
	"errors"
	"maps"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/orderstream/orderstream/consumers"
	"github.com/orderstream/orderstream/internal/testenv"
	"github.com/orderstream/orderstream/internal/testfixture"
	"github.com/orderstream/orderstream/schemas"
	"github.com/twmb/franz-go/pkg/kgo"
)

// EnvOutageTest opts in to TestEngineOutage, which stops the shared
// OpenSearch node for 30 s: run it alone, never beside other tests that use
// the search engine:
//
//	ORDERSTREAM_TEST_OUTAGE=1 go test -count=1 -run TestEngineOutage ./projections/search/
const EnvOutageTest = "ORDERSTREAM_TEST_OUTAGE"

// finalVersions maps each order of events to its last version.
func finalVersions(events []schemas.Envelope) map[string]int64 {
	out := map[string]int64{}
	for _, e := range events {
		out[e.AggregateID] = max(out[e.AggregateID], e.AggregateVersion)
	}
	return out
}

// daemon is a consumer-group member running the search sink.
type daemon struct {
	c    *consumers.Consumer
	done chan error
	stop context.CancelFunc
}

func startDaemon(t *testing.T, brokers []string, topic, group string, sink *Sink) *daemon {
	t.Helper()
	return startMember(t, consumers.Config{Brokers: brokers, Topic: topic, Group: group, Projection: "search", BatchMaxRecords: 2000}, sink)
}

// startMember runs sink under the consumer runtime with cfg until shutdown
// (at the test's cleanup at the latest).
func startMember(t *testing.T, cfg consumers.Config, sink consumers.Sink) *daemon {
	t.Helper()
	c, err := consumers.New(cfg, sink)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	d := &daemon{c: c, done: make(chan error, 1), stop: cancel}
	go func() { d.done <- c.Run(ctx) }()
	t.Cleanup(func() { d.shutdown(t) })
	return d
}

func (d *daemon) shutdown(t *testing.T) {
	if d.stop == nil {
		return
	}
	d.stop()
	d.stop = nil
	if err := <-d.done; err != nil && !errors.Is(err, context.Canceled) {
		t.Errorf("consumer Run: %v", err)
	}
	if err := d.c.Close(); err != nil {
		t.Errorf("consumer Close: %v", err)
	}
}

// waitApplied polls until every order of want is in the serving generation at
// its final version, or fails after timeout.
func waitApplied(t *testing.T, eng Engine, admin *Admin, want map[string]int64, timeout time.Duration) map[string]snapEntry {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		if err := admin.Refresh(context.Background()); err == nil {
			snap := snapshot(t, eng, admin.Names())
			ok := len(snap) == len(want)
			for id, v := range want {
				if snap[id].Version != v {
					ok = false
					break
				}
			}
			if ok {
				return snap
			}
			if time.Now().After(deadline) {
				t.Fatalf("after %s: %d of %d orders indexed (or not at their last version)", timeout, len(snap), len(want))
			}
		} else if time.Now().After(deadline) {
			t.Fatalf("after %s: refresh: %v", timeout, err)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// TestDaemonOverKafka runs the sink under the consumer runtime on a real
// topic, on each adapter, then consumes the whole topic again with a new
// group: no document, version or facet count may change.
func TestDaemonOverKafka(t *testing.T) {
	engines := testEngines(t)
	brokers := testenv.KafkaBrokers(t)
	events := testfixture.RealEvents(t)[:6000]
	want := finalVersions(events)
	topic := testfixture.ProduceTopic(t, brokers, events)
	for _, name := range []string{EngineOpenSearch, EngineElasticsearch} {
		t.Run(name, func(t *testing.T) {
			eng := engines[name]
			cfg, admin := newTestModel(t, eng)
			first, err := NewSink(SinkConfig{Config: cfg})
			if err != nil {
				t.Fatal(err)
			}
			d := startDaemon(t, brokers, topic, testenv.Name("search"), first)
			before := waitApplied(t, eng, admin, want, 5*time.Minute)
			d.shutdown(t)
			q, _ := NewQuery(cfg)
			facets := func() Facets {
				res, err := q.Search(context.Background(), Request{Size: 1})
				if err != nil {
					t.Fatal(err)
				}
				return res.Facets
			}
			f1 := facets()

			again, err := NewSink(SinkConfig{Config: cfg})
			if err != nil {
				t.Fatal(err)
			}
			d2 := startDaemon(t, brokers, topic, testenv.Name("search"), again)
			deadline := time.Now().Add(5 * time.Minute)
			for again.Stats().Conflicts+again.Stats().Stale < int64(len(want)) {
				if time.Now().After(deadline) {
					t.Fatalf("second group: %+v after 5 minutes", again.Stats())
				}
				time.Sleep(200 * time.Millisecond)
			}
			d2.shutdown(t)
			if st := again.Stats(); st.Documents != 0 || st.Rejected != 0 {
				t.Errorf("second pass over the topic: %+v, want no document written and none rejected", st)
			}
			if err := admin.Refresh(context.Background()); err != nil {
				t.Fatal(err)
			}
			if after := snapshot(t, eng, cfg.Names()); !maps.Equal(before, after) {
				t.Errorf("the second pass changed the documents")
			}
			if f2 := facets(); jsonOf(f1) != jsonOf(f2) {
				t.Errorf("facets changed: %s → %s", jsonOf(f1), jsonOf(f2))
			}
		})
	}
}

// TestEngineOutage stops the search engine for 30 s while the daemon (the
// consumer runtime with the Elasticsearch adapter) is mid-topic and new
// events keep arriving, starts it again, and checks that the daemon
// recovers by itself and indexes every order at its last version.
func TestEngineOutage(t *testing.T) {
	if os.Getenv(EnvOutageTest) != "1" {
		t.Skipf("stops the shared search engine: set %s=1 and run this test alone", EnvOutageTest)
	}
	engines := testEngines(t)
	searchURL, err := url.Parse(testenv.SearchURL(t))
	if err != nil {
		t.Fatal(err)
	}
	if h := searchURL.Hostname(); h != "127.0.0.1" && h != "localhost" {
		t.Skipf("the engine at %s is not the local node deploy/local/services.sh runs", searchURL)
	}
	services := func(args ...string) {
		t.Helper()
		script := filepath.Join(testfixture.ModuleRoot(t), "deploy", "local", "services.sh")
		cmd := exec.Command(script, args...)
		cmd.Env = append(os.Environ(), "ORDERSTREAM_SEARCH_PORT="+searchURL.Port())
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("services.sh %v: %v\n%s", args, err, out)
		}
	}
	brokers := testenv.KafkaBrokers(t)
	all := testfixture.RealEvents(t)[:8000]
	early, late := all[:4000], all[4000:]
	want := finalVersions(all)
	topic := testfixture.ProduceTopic(t, brokers, early)

	eng := engines[EngineElasticsearch]
	cfg, admin := newTestModel(t, eng)
	sink, err := NewSink(SinkConfig{Config: cfg, RetryTimeout: 5 * time.Second, RequestTimeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	startDaemon(t, brokers, topic, testenv.Name("search"), sink)
	deadline := time.Now().Add(3 * time.Minute)
	for sink.Stats().Documents == 0 {
		if time.Now().After(deadline) {
			t.Fatal("nothing indexed within 3 minutes")
		}
		time.Sleep(50 * time.Millisecond)
	}

	t.Cleanup(func() { services("start", "opensearch") }) // even on failure
	services("stop", "opensearch")
	t.Logf("engine stopped after %+v; producing %d more events, down for 30 s", sink.Stats(), len(late))
	produce(t, brokers, topic, late)
	time.Sleep(30 * time.Second) // the outage itself
	services("start", "opensearch")

	waitApplied(t, eng, admin, want, 5*time.Minute)
	st := sink.Stats()
	t.Logf("recovered: %+v", st)
	if st.Retries == 0 || st.Rejected != 0 {
		t.Errorf("stats %+v: want retries during the outage and no rejection", st)
	}
}

// produce appends events to topic as the relay would.
func produce(t *testing.T, brokers []string, topic string, events []schemas.Envelope) {
	t.Helper()
	v, err := schemas.NewValidator()
	if err != nil {
		t.Fatal(err)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.RequiredAcks(kgo.AllISRAcks()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var recs []*kgo.Record
	for _, e := range events {
		r, err := testfixture.Record(v, topic, e)
		if err != nil {
			t.Fatal(err)
		}
		recs = append(recs, r)
	}
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatalf("produce to %s: %v", topic, err)
	}
}
