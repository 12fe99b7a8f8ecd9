package api

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// pinging is a Pinger whose answer the test sets, counting its calls.
type pinging struct {
	mu    sync.Mutex
	err   error
	calls atomic.Int32
}

func (p *pinging) Ping(ctx context.Context) error {
	p.calls.Add(1)
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.err
}

func (p *pinging) set(err error) { p.mu.Lock(); p.err = err; p.mu.Unlock() }

type pingingAnalytics struct {
	fakeAnalytics
	*pinging
}

type pingingSearch struct {
	fakeSearch
	*pinging
}

// TestReadyzReflectsReadModels proves that /readyz is 503 naming the read
// model that does not answer while /healthz (liveness) stays 200, that an
// answer is reused within readyCacheTTL and that recovery shows after it.
func TestReadyzReflectsReadModels(t *testing.T) {
	t.Parallel()
	ap, sp := &pinging{}, &pinging{}
	srv := newTestServer(t, &pingingAnalytics{pinging: ap}, &pingingSearch{pinging: sp})
	var mu sync.Mutex
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	srv.ready.now = func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func() { mu.Lock(); now = now.Add(readyCacheTTL); mu.Unlock() }
	h := srv.Handler()

	readyz := func(wantCode int, want map[string]string) {
		t.Helper()
		w := get(t, h, "/readyz")
		var body struct {
			Status     string            `json:"status"`
			ReadModels map[string]string `json:"read_models"`
		}
		if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil {
			t.Fatalf("readyz body %s: %v", w.Body, err)
		}
		if w.Code != wantCode || len(body.ReadModels) != len(want) {
			t.Fatalf("readyz: HTTP %d %s; want %d with %v", w.Code, w.Body, wantCode, want)
		}
		for k, v := range want {
			if body.ReadModels[k] != v {
				t.Fatalf("readyz: read_models %v; want %v", body.ReadModels, want)
			}
		}
	}

	readyz(200, map[string]string{"analytics": "ok", "search": "ok"})
	sp.set(errors.New("dial tcp 127.0.0.1:59200: connection refused"))
	readyz(200, map[string]string{"analytics": "ok", "search": "ok"}) // cached
	if n := sp.calls.Load(); n != 1 {
		t.Fatalf("search pinged %d times within the cache TTL; want 1", n)
	}
	advance()
	readyz(503, map[string]string{"analytics": "ok", "search": "unavailable"})
	if w := get(t, h, "/readyz"); strings.Contains(w.Body.String(), "59200") {
		t.Fatalf("readyz leaks the cause: %s", w.Body)
	}
	if w := get(t, h, "/healthz"); w.Code != 200 {
		t.Fatalf("healthz with the search read model down: HTTP %d; want 200 (liveness)", w.Code)
	}
	ap.set(errors.New("clickhouse down"))
	sp.set(nil)
	advance()
	readyz(503, map[string]string{"analytics": "unavailable", "search": "ok"})
	ap.set(nil)
	advance()
	readyz(200, map[string]string{"analytics": "ok", "search": "ok"})
}

// TestReadyzPingsUnderDeadline proves that a hanging read model makes
// /readyz answer 503 at its ping deadline rather than hang.
func TestReadyzPingsUnderDeadline(t *testing.T) {
	t.Parallel()
	srv := newTestServer(t, &hangingAnalytics{}, &fakeSearch{})
	srv.ready.timeout = 100 * time.Millisecond
	start := time.Now()
	w := get(t, srv.Handler(), "/readyz")
	if w.Code != 503 || time.Since(start) > 5*time.Second {
		t.Fatalf("readyz: HTTP %d after %s; want 503 at the %s deadline", w.Code, time.Since(start), srv.ready.timeout)
	}
}

type hangingAnalytics struct{ fakeAnalytics }

func (hangingAnalytics) Ping(ctx context.Context) error { <-ctx.Done(); return ctx.Err() }

// TestMetrics proves that /metrics counts requests by route pattern (not
// by raw path) and status code and times them.
func TestMetrics(t *testing.T) {
	t.Parallel()
	h := newTestServer(t, &fakeAnalytics{}, &fakeSearch{}).Handler()
	get(t, h, "/api/v1/analytics/summary")
	get(t, h, "/api/v1/analytics/summary?from=x")
	get(t, h, "/api/v1/orders/8fbcb099-d50e-4b4c-8f58-809c190e5c96")
	get(t, h, "/api/v1/nope")
	get(t, h, "/api/v1/analytics/summary", "Host", "attacker.example")
	w := get(t, h, "/metrics")
	if w.Code != 200 {
		t.Fatalf("metrics: HTTP %d", w.Code)
	}
	body := w.Body.String()
	for _, want := range []string{
		`orderstream_api_requests_total{code="200",route="GET /api/v1/analytics/summary"} 1`,
		`orderstream_api_requests_total{code="400",route="GET /api/v1/analytics/summary"} 1`,
		`orderstream_api_requests_total{code="421",route="GET /api/v1/analytics/summary"} 1`,
		`orderstream_api_requests_total{code="200",route="GET /api/v1/orders/{id}"} 1`,
		`orderstream_api_requests_total{code="404",route="GET /api/"} 1`,
		`orderstream_api_request_duration_seconds_count{route="GET /api/v1/analytics/summary"} 3`,
		`go_goroutines `,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	if strings.Contains(body, "8fbcb099") {
		t.Error("metrics carry a raw path (an order id): labels must be route patterns")
	}
	if w := get(t, h, "/metrics", "Accept", "text/plain"); w.Header().Get("Content-Type") == "" || w.Code != http.StatusOK {
		t.Errorf("metrics: HTTP %d, Content-Type %q", w.Code, w.Header().Get("Content-Type"))
	}
}
