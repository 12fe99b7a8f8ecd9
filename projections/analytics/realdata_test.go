package analytics_test

import (
	"context"
	"testing"
	"time"

	"github.com/orderstream/orderstream/internal/testfixture"
	"github.com/orderstream/orderstream/projections/analytics"
)

func TestRealFileThroughSink(t *testing.T) {
	events := testfixture.RealEvents(t)
	cfg := testConfig(t)
	s := newSink(t, cfg)
	start := time.Now()
	writeAll(t, s, events, 5000)
	t.Logf("wrote %d events in %s", len(events), time.Since(start))
	q, _ := newQueries(t, cfg)
	ctx := context.Background()
	got, err := q.Summary(ctx, analytics.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	if got.NetRevenue.String() != testfixture.RealNetGBP {
		t.Errorf("net revenue = %s, want %s", got.NetRevenue, testfixture.RealNetGBP)
	}
	t.Logf("%+v", got)
}
