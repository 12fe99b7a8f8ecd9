package load

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// TestStageScrape: two series of one histogram are summed, the run's share
// is the difference of two scrapes, and its quantiles are the upper bounds
// of the buckets holding them.
func TestStageScrape(t *testing.T) {
	t.Parallel()
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		k := n.Add(1) - 1 // 0 before, 1 after
		fmt.Fprintln(w, "# TYPE h histogram")
		for _, g := range []string{"a", "b"} {
			// Before: 10 events ≤ 0.01 s per series. After: 10 more ≤ 0.01 s
			// and 98 ≤ 0.1 s and 2 ≤ 1 s over both series.
			c1, c2, c3 := 10, 10, 10
			if k == 1 {
				c1, c2, c3 = 15, 64, 65
			}
			fmt.Fprintf(w, "h_bucket{g=%q,le=\"0.01\"} %d\nh_bucket{g=%q,le=\"0.1\"} %d\nh_bucket{g=%q,le=\"1\"} %d\nh_bucket{g=%q,le=\"+Inf\"} %d\nh_sum{g=%q} 1\nh_count{g=%q} %d\n",
				g, c1, g, c2, g, c3, g, c3, g, g, c3)
		}
	}))
	defer srv.Close()
	ctx := context.Background()
	a, err := scrape(ctx, srv.Client(), srv.URL, "h")
	if err != nil {
		t.Fatal(err)
	}
	b, err := scrape(ctx, srv.Client(), srv.URL, "h")
	if err != nil {
		t.Fatal(err)
	}
	got := b.sub(a).latency()
	want := Latency{N: 110, P50: 100 * time.Millisecond, P99: time.Second, Max: time.Second}
	if got != want {
		t.Errorf("latency %+v, want %+v", got, want)
	}
	if _, err := scrape(ctx, srv.Client(), srv.URL, "missing"); err == nil || !strings.Contains(err.Error(), "no histogram missing") {
		t.Errorf("missing metric: err %v", err)
	}
	if l := (buckets{}).latency(); l != (Latency{}) {
		t.Errorf("empty: %+v", l)
	}
}
