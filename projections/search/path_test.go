package search

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
)

// recordingTransport answers every request with 404 and keeps the first
// and the last request, so a test sees exactly what an adapter put on the
// wire. Not safe for concurrent use.
type recordingTransport struct{ first, last *http.Request }

func (t *recordingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if t.first == nil {
		t.first = r
	}
	t.last = r
	h := http.Header{}
	h.Set("X-Elastic-Product", "Elasticsearch")
	h.Set("Content-Type", "application/json")
	return &http.Response{StatusCode: http.StatusNotFound, Header: h, Request: r,
		Body: io.NopCloser(strings.NewReader(`{"found":false}`))}, nil
}

// TestGetEscapesDocumentID proves that both adapters send a document id as
// one escaped path segment: an id with "../", "?" or "#" can neither leave
// /<index>/_doc/ nor add query parameters.
func TestGetEscapesDocumentID(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, give, wantPath string
	}{
		{"traversal", "../../_cluster/settings", "/orders/_doc/..%2F..%2F_cluster%2Fsettings"},
		{"query", "x?refresh=true&pretty", "/orders/_doc/x%3Frefresh=true&pretty"},
		{"fragment", "a#b", "/orders/_doc/a%23b"},
		{"uuid", "8fbcb099-d50e-4b4c-8f58-809c190e5c96", "/orders/_doc/8fbcb099-d50e-4b4c-8f58-809c190e5c96"},
	}
	for _, kind := range []string{EngineOpenSearch, EngineElasticsearch} {
		for _, tt := range tests {
			t.Run(kind+"/"+tt.name, func(t *testing.T) {
				t.Parallel()
				rec := &recordingTransport{}
				eng, err := NewEngine(EngineConfig{Kind: kind, URL: "http://127.0.0.1:9", Transport: rec})
				if err != nil {
					t.Fatal(err)
				}
				if _, err := eng.Get(context.Background(), "orders", tt.give); err != nil {
					t.Fatalf("Get(%q): %v", tt.give, err)
				}
				if rec.last == nil {
					t.Fatal("no request sent")
				}
				if got := rec.last.URL.EscapedPath(); got != tt.wantPath {
					t.Errorf("path = %s, want %s", got, tt.wantPath)
				}
				if q := rec.last.URL.RawQuery; strings.Contains(q, "refresh") || strings.Contains(q, "pretty") {
					t.Errorf("query = %q: the id added parameters", q)
				}
			})
		}
	}
}
