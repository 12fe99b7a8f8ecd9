package search

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/orderstream/orderstream/internal/testenv"
	"github.com/orderstream/orderstream/internal/testfixture"
)

// waitGreen polls the cluster health of the indexes behind prefix until it
// is green (every primary and replica assigned) or timeout passes.
func waitGreen(t *testing.T, baseURL, prefix string, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var last string
	for time.Now().Before(deadline) {
		resp, err := http.Get(baseURL + "/_cluster/health/" + prefix + "*")
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			last = string(b)
			if strings.Contains(last, `"status":"green"`) {
				return
			}
		} else {
			last = err.Error()
		}
		time.Sleep(250 * time.Millisecond)
	}
	t.Fatalf("indexes %s* not green within %s: %s", prefix, timeout, last)
}

// TestClusterRealDataSearchNodeKilled indexes every event of the real file
// on the two-node search cluster with one replica per shard, SIGKILLs the
// data node a third of the way in and starts it again two thirds in; a
// write that fails while the cluster notices is retried, as the consumer
// runtime does. Every document and facet must be exact, and the indexes
// green again (the restarted node's copies recovered).
func TestClusterRealDataSearchNodeKilled(t *testing.T) {
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
	first := strings.Split(c.SearchURL, ",")[0]
	waitGreen(t, first, cfg.Prefix, time.Minute)

	exp := testfixture.ExpectedFromCSV(t)
	recs := records(testfixture.RealEvents(t))
	sink, err := NewSink(SinkConfig{Config: cfg})
	if err != nil {
		t.Fatal(err)
	}
	killed, retries := false, 0
	t.Cleanup(func() {
		if killed {
			c.Node(t, "start", "opensearch-2")
		}
	})
	start := time.Now()
	const size = 2000
	for i := 0; i < len(recs); i += size {
		switch {
		case i >= len(recs)/3 && !killed && i < 2*len(recs)/3:
			c.Node(t, "kill", "opensearch-2")
			killed = true
		case i >= 2*len(recs)/3 && killed:
			c.Node(t, "start", "opensearch-2")
			killed = false
		}
		for {
			err := sink.Write(ctx, recs[i:min(i+size, len(recs))])
			if err == nil {
				break
			}
			if ctx.Err() != nil {
				t.Fatalf("write batch at %d: %v", i, err)
			}
			retries++
			t.Logf("write batch at %d failed, retrying: %v", i, err)
			time.Sleep(200 * time.Millisecond)
		}
	}
	t.Logf("indexed %d events in %s with %d retried batches, %+v", len(recs), time.Since(start).Round(time.Millisecond), retries, sink.Stats())
	waitGreen(t, first, cfg.Prefix, 3*time.Minute)
	if err := admin.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	checkAgainstCSV(t, exp, snapshot(t, eng, cfg.Names()))
	q, err := NewQuery(cfg)
	if err != nil {
		t.Fatal(err)
	}
	checkFacets(t, q, exp)
	// Both copies of every shard hold every document.
	resp, err := http.Get(first + "/_cat/shards/" + cfg.Prefix + "*?h=index,shard,prirep,state,docs")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	docs := map[string][]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		f := strings.Fields(line)
		if len(f) == 5 && f[3] == "STARTED" {
			key := f[0] + "/" + f[1]
			docs[key] = append(docs[key], f[2]+"="+f[4])
		}
	}
	for shard, copies := range docs {
		if len(copies) != 2 || strings.Split(copies[0], "=")[1] != strings.Split(copies[1], "=")[1] {
			t.Errorf("shard %s: copies %v, want a primary and a replica with the same document count", shard, copies)
		}
	}
	t.Logf("shard copies: %v", fmt.Sprint(docs))
}
