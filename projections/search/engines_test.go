package search

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/orderstream/orderstream/internal/testenv"
)

// elasticProductHeader is a TEST-ONLY http.RoundTripper: it adds the
// response header X-Elastic-Product: Elasticsearch that go-elasticsearch
// insists on, so that the Elasticsearch adapter can run the integration
// suite against the local OpenSearch node (these machines cannot run
// Elasticsearch). Production code never uses it: against a real
// Elasticsearch the header is the server's own.
type elasticProductHeader struct{ next http.RoundTripper }

func (t elasticProductHeader) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := t.next.RoundTrip(r)
	if resp != nil {
		resp.Header.Set("X-Elastic-Product", "Elasticsearch")
	}
	return resp, err
}

// serverDistribution returns "opensearch" or "elasticsearch" for the node at url.
func serverDistribution(t testing.TB, url string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("search engine at %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var info struct {
		Version struct {
			Distribution string `json:"distribution"`
		} `json:"version"`
	}
	_ = json.Unmarshal(b, &info)
	if info.Version.Distribution == "opensearch" {
		return EngineOpenSearch
	}
	return EngineElasticsearch
}

// testEngines returns both adapters, connected to the shared search engine
// (testenv.SearchURL: the local OpenSearch node, or an Elasticsearch 8
// container where Docker runs). The suite is engine-agnostic: every test
// runs once per adapter.
func testEngines(t testing.TB) map[string]Engine {
	t.Helper()
	url := testenv.SearchURL(t)
	var esTransport http.RoundTripper
	if serverDistribution(t, url) == EngineOpenSearch {
		esTransport = elasticProductHeader{next: http.DefaultTransport}
	}
	out := map[string]Engine{}
	for _, cfg := range []EngineConfig{
		{Kind: EngineOpenSearch, URL: url},
		{Kind: EngineElasticsearch, URL: url, Transport: esTransport},
	} {
		e, err := NewEngine(cfg)
		if err != nil {
			t.Fatalf("%s engine: %v", cfg.Kind, err)
		}
		out[cfg.Kind] = e
	}
	return out
}

// newTestSinkQuery is newTestModel with a sink and a query on the model.
func newTestSinkQuery(t testing.TB, eng Engine) (*Admin, *Sink, *Query) {
	t.Helper()
	cfg, admin := newTestModel(t, eng)
	sink, err := NewSink(SinkConfig{Config: cfg})
	if err != nil {
		t.Fatal(err)
	}
	q, err := NewQuery(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return admin, sink, q
}

// newTestModel sets up a read model of its own (unique prefix) on eng and
// drops it at cleanup.
func newTestModel(t testing.TB, eng Engine) (Config, *Admin) {
	t.Helper()
	cfg := Config{Engine: eng, Prefix: testenv.Name("srch")}
	a, err := NewAdmin(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if n, err := a.Setup(ctx); err != nil || n != 1 {
		t.Fatalf("setup: generation %d, %v", n, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := a.DropAll(ctx); err != nil {
			t.Logf("drop read model %s: %v", cfg.Prefix, err)
		}
	})
	return cfg, a
}
