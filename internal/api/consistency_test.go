package api

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"
)

// lagging is a read model that reaches version `at` of every order after
// `after` asks (a read model applying events while the query waits).
type lagging struct {
	asks  atomic.Int64
	after int64
	at    int64
}

func (l *lagging) OrderVersion(context.Context, string) (int64, error) {
	if l.asks.Add(1) > l.after {
		return l.at, nil
	}
	return l.at - 1, nil
}

type laggingSearch struct {
	*fakeSearch
	get, searched *lagging
}

func (s laggingSearch) OrderVersion(ctx context.Context, id string) (int64, error) {
	return s.get.OrderVersion(ctx, id)
}

func (s laggingSearch) SearchedVersion(ctx context.Context, id string) (int64, error) {
	return s.searched.OrderVersion(ctx, id)
}

type laggingAnalytics struct {
	*fakeAnalytics
	*lagging
}

// TestReadYourWrites: a query with a consistency token answers once its
// read model applied the version, and 503 naming the applied version when
// the wait's bound passes first; a query without one does not wait.
func TestReadYourWrites(t *testing.T) {
	t.Parallel()
	tok := ConsistencyToken("o-1", 3)
	tests := []struct {
		name      string
		target    string
		header    []string
		after     int64 // asks before the read model has version 3
		wantCode  int
		wantAsked func(get, searched, analytics int64) bool
	}{
		{"order detail waits for min_version", "/api/v1/orders/o-1?min_version=3", nil, 3, 200,
			func(g, s, a int64) bool { return g == 4 && s == 0 && a == 0 }},
		{"order detail waits for a token", "/api/v1/orders/o-1", []string{"Consistency-Token", tok}, 2, 200,
			func(g, s, a int64) bool { return g == 3 }},
		{"search waits for what searches see", "/api/v1/orders/search?q=clock", []string{"Consistency-Token", tok}, 2, 200,
			func(g, s, a int64) bool { return g == 0 && s == 3 }},
		{"analytics waits", "/api/v1/analytics/summary", []string{"Consistency-Token", tok}, 2, 200,
			func(g, s, a int64) bool { return a == 3 }},
		{"no token: no wait", "/api/v1/analytics/summary", nil, 1 << 30, 200,
			func(g, s, a int64) bool { return g+s+a == 0 }},
		{"the bound passes", "/api/v1/analytics/revenue", []string{"Consistency-Token", tok, "Prefer", "wait=1"}, 1 << 30, 503,
			func(g, s, a int64) bool { return a >= 5 }}, // 20 ms growing by half to 100 ms over 1 s
		{"wait=0 asks once", "/api/v1/orders/o-1?min_version=3", []string{"Prefer", "respond-async, wait=0"}, 1 << 30, 503,
			func(g, s, a int64) bool { return g == 1 }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			gl, searched, an := &lagging{after: tt.after, at: 3}, &lagging{after: tt.after, at: 3}, &lagging{after: tt.after, at: 3}
			h := newTestServer(t, laggingAnalytics{&fakeAnalytics{}, an}, laggingSearch{&fakeSearch{}, gl, searched}).Handler()
			start := time.Now()
			w := get(t, h, tt.target, tt.header...)
			if w.Code != tt.wantCode {
				t.Fatalf("HTTP %d, want %d: %s", w.Code, tt.wantCode, w.Body)
			}
			if !tt.wantAsked(gl.asks.Load(), searched.asks.Load(), an.asks.Load()) {
				t.Fatalf("asked get %d, search %d, analytics %d times", gl.asks.Load(), searched.asks.Load(), an.asks.Load())
			}
			if tt.wantCode == http.StatusServiceUnavailable {
				p := decodeProblem(t, w)
				if p.Rule != "read-model-behind" || p.CurrentVersion != 2 || w.Header().Get("Retry-After") != "1" {
					t.Fatalf("problem %+v, Retry-After %q", p, w.Header().Get("Retry-After"))
				}
				if len(tt.header) > 2 && w.Header().Get("Preference-Applied") == "" {
					t.Fatal("no Preference-Applied")
				}
				if d := time.Since(start); d > 3*time.Second {
					t.Fatalf("answered after %s, past the wait's bound", d)
				}
			}
		})
	}
}

func TestConsistencyTokenParameters(t *testing.T) {
	t.Parallel()
	h := newTestServer(t, &fakeAnalytics{}, &fakeSearch{}).Handler()
	for _, tt := range []struct {
		target, token, wantParam string
	}{
		{"/api/v1/orders/o-1?min_version=0", "", "min_version"},
		{"/api/v1/orders/o-1?min_version=x", "", "min_version"},
		{"/api/v1/orders/o-1?version=2", "", "version"},
		{"/api/v1/analytics/summary", "3", "Consistency-Token"},
		{"/api/v1/orders/search", "x:o-1", "Consistency-Token"},
	} {
		var header []string
		if tt.token != "" {
			header = []string{"Consistency-Token", tt.token}
		}
		w := get(t, h, tt.target, header...)
		if w.Code != http.StatusBadRequest {
			t.Fatalf("%s %q: HTTP %d, want 400", tt.target, tt.token, w.Code)
		}
		if p := decodeProblem(t, w); len(p.InvalidParams) == 0 || p.InvalidParams[0].Name != tt.wantParam {
			t.Fatalf("%s %q: %+v, want %s named", tt.target, tt.token, p.InvalidParams, tt.wantParam)
		}
	}
	r := httptest.NewRequest(http.MethodGet, "/api/v1/analytics/summary", nil)
	r.Host = "127.0.0.1:8080"
	r.Header.Add("Consistency-Token", ConsistencyToken("o-1", 2))
	r.Header.Add("Consistency-Token", ConsistencyToken("o-2", 5))
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	if p := decodeProblem(t, w); w.Code != http.StatusBadRequest || len(p.InvalidParams) == 0 || p.InvalidParams[0].Name != "Consistency-Token" {
		t.Fatalf("two tokens: HTTP %d %+v, want 400 naming Consistency-Token", w.Code, p)
	}
	if id, v, err := ParseConsistencyToken(ConsistencyToken("a:b", 7)); err != nil || id != "a:b" || v != 7 {
		t.Fatalf("round trip: %q %d %v", id, v, err)
	}
}

// byID is a search read model that knows the version of order o-1 by its
// id only, as the real one does (a get by document id).
type byID struct{ *fakeSearch }

func (byID) OrderVersion(_ context.Context, id string) (int64, error) {
	if id == "o-1" {
		return 3, nil
	}
	return 0, nil
}

// TestMinVersionByOrderNumber: order detail takes an order number as well
// as an id, and so does its min_version: the order the read model holds at
// that version answers at once, not 503 "version 0" at the wait's bound.
func TestMinVersionByOrderNumber(t *testing.T) {
	t.Parallel()
	fs := &fakeSearch{GetFn: func(_ context.Context, ref string) (Order, error) {
		if ref == "536365" || ref == "o-1" {
			return Order{OrderSummary: OrderSummary{ID: "o-1", OrderNumber: "536365"}, Version: 3}, nil
		}
		return Order{}, ErrNotFound
	}}
	h := newTestServer(t, &fakeAnalytics{}, byID{fs}).Handler()
	for _, tt := range []struct {
		target string
		want   int
	}{
		{"/api/v1/orders/536365?min_version=3", http.StatusOK},
		{"/api/v1/orders/o-1?min_version=3", http.StatusOK},
		{"/api/v1/orders/536365?min_version=4", http.StatusServiceUnavailable},
		{"/api/v1/orders/581538?min_version=1", http.StatusServiceUnavailable},
	} {
		w := get(t, h, tt.target, "Prefer", "wait=1")
		if w.Code != tt.want {
			t.Fatalf("%s: HTTP %d, want %d: %s", tt.target, w.Code, tt.want, w.Body)
		}
		if tt.want == http.StatusServiceUnavailable {
			if p := decodeProblem(t, w); tt.target == "/api/v1/orders/536365?min_version=4" && p.CurrentVersion != 3 {
				t.Fatalf("%s: current_version %d, want 3", tt.target, p.CurrentVersion)
			}
		}
	}
}

// TestPreferWaitBounded: a wait of more seconds than a Duration holds is
// capped at the limit, not wrapped into a negative wait that answers at
// once ("after waiting -1s").
func TestPreferWaitBounded(t *testing.T) {
	t.Parallel()
	srv := newTestServer(t, &fakeAnalytics{}, &fakeSearch{})
	limit := min(srv.cfg.WaitLimit, srv.cfg.RequestTimeout-time.Second)
	for _, v := range []string{"wait=11", "wait=9999999999", "wait=18446744073", "wait=9223372036854775807", "respond-async, wait=99999999999", "wait=99999999999999999999"} {
		r := httptest.NewRequest(http.MethodGet, "/api/v1/analytics/summary", nil)
		r.Header.Set("Prefer", v)
		if d, asked := srv.preferWait(r); d != limit || !asked {
			t.Errorf("Prefer: %s: wait %s (asked %v), want the limit %s", v, d, asked, limit)
		}
	}
	r := httptest.NewRequest(http.MethodGet, "/api/v1/analytics/summary", nil)
	r.Header.Set("Prefer", "wait=2")
	if d, _ := srv.preferWait(r); d != 2*time.Second {
		t.Errorf("Prefer: wait=2: wait %s, want 2s", d)
	}
}
