package analytics_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/orderstream/orderstream/consumers"
	"github.com/orderstream/orderstream/internal/scaledata"
	"github.com/orderstream/orderstream/internal/testfixture"
	"github.com/orderstream/orderstream/producer/csvimport"
	"github.com/orderstream/orderstream/projections/analytics"
)

// dashboardQueries are the dashboard's questions as the API asks them
// (internal/api: a country filter is first checked with HasCountry; top
// products by revenue, limit 10), named as in make bench-scale's table.
var dashboardQueries = []struct {
	name     string
	run      func(ctx context.Context, q *analytics.Queries) error
	baseline func(b *testing.B, o linesOracle) // the same answer straight from the deduplicated lines
}{
	{"summary", func(ctx context.Context, q *analytics.Queries) error {
		_, err := q.Summary(ctx, analytics.Filter{})
		return err
	}, func(b *testing.B, o linesOracle) { o.groups(b, analytics.Filter{}, "'all'") }},
	{"by day", func(ctx context.Context, q *analytics.Queries) error {
		_, err := q.Breakdown(ctx, analytics.Filter{}, analytics.ByDay)
		return err
	}, func(b *testing.B, o linesOracle) {
		o.groups(b, analytics.Filter{}, "toDate(placed_at, 'Europe/London')")
	}},
	{"by month", func(ctx context.Context, q *analytics.Queries) error {
		_, err := q.Breakdown(ctx, analytics.Filter{}, analytics.ByMonth)
		return err
	}, func(b *testing.B, o linesOracle) {
		o.groups(b, analytics.Filter{}, "substring(toString(toStartOfMonth(placed_at, 'Europe/London')), 1, 7)")
	}},
	{"by country", func(ctx context.Context, q *analytics.Queries) error {
		_, err := q.Breakdown(ctx, analytics.Filter{}, analytics.ByCountry)
		return err
	}, func(b *testing.B, o linesOracle) { o.groups(b, analytics.Filter{}, "country") }},
	{"top products", func(ctx context.Context, q *analytics.Queries) error {
		_, err := q.TopProducts(ctx, analytics.Filter{}, analytics.RankRevenue, 10)
		return err
	}, func(b *testing.B, o linesOracle) { o.products(b, analytics.Filter{}, analytics.RankRevenue, 10) }},
	{"one month", func(ctx context.Context, q *analytics.Queries) error {
		_, err := q.Summary(ctx, oneMonth)
		return err
	}, func(b *testing.B, o linesOracle) { o.groups(b, oneMonth, "'all'") }},
	{"one country", func(ctx context.Context, q *analytics.Queries) error {
		if ok, err := q.HasCountry(ctx, "France"); err != nil || !ok {
			return fmt.Errorf("HasCountry(France) = %v, %v", ok, err)
		}
		_, err := q.Summary(ctx, analytics.Filter{Country: "France"})
		return err
	}, func(b *testing.B, o linesOracle) {
		var n uint64
		if err := o.conn.QueryRow(context.Background(), "SELECT count() FROM `"+o.db+"`.order_lines WHERE country = 'France'").Scan(&n); err != nil || n == 0 {
			b.Fatalf("lines of France: %d, %v", n, err)
		}
		o.groups(b, analytics.Filter{Country: "France"}, "'all'")
	}},
}

var oneMonth = analytics.Filter{From: time.Date(2011, 11, 1, 0, 0, 0, 0, time.UTC), To: time.Date(2011, 11, 30, 0, 0, 0, 0, time.UTC)}

// BenchmarkDashboardQueries measures every dashboard query on N copies of
// the real file (ORDERSTREAM_SCALES, default "1,3"; internal/scaledata),
// projected through the Sink into a fresh database (batches of 5,000
// events, no Kafka), straight after the load as make bench-scale does: p50
// and p95 of ten timed runs after two warm-ups, the load average beside
// them. It checks the summary against the oracle
// (testfixture.ComputeExpectedCopies). With
// ORDERSTREAM_DASHBOARD_BASELINE=1 it also times, on the same data, each
// question asked straight of the deduplicated lines (the view order_lines,
// as every query read before the order-level view and the rollup). The quick way to see how a query's
// cost grows with the data, without the whole pipeline:
//
//	CI=true go test -run '^$' -bench DashboardQueries -benchtime 1x -timeout 1h ./projections/analytics/
func BenchmarkDashboardQueries(b *testing.B) {
	scales := []int{1, 3}
	if s := os.Getenv("ORDERSTREAM_SCALES"); s != "" {
		scales = nil
		for _, f := range strings.Split(s, ",") {
			n, err := strconv.Atoi(strings.TrimSpace(f))
			if err != nil || n < 1 {
				b.Fatalf("ORDERSTREAM_SCALES=%q: want copies, comma-separated", s)
			}
			scales = append(scales, n)
		}
	}
	real := testfixture.RealFile(b)
	for b.Loop() {
		for _, n := range scales {
			measureDashboard(b, real, n)
		}
	}
}

func measureDashboard(b *testing.B, real string, n int) {
	ctx := context.Background()
	file := filepath.Join(b.TempDir(), "copies.csv")
	f, err := os.Create(file)
	if err != nil {
		b.Fatal(err)
	}
	w := bufio.NewWriterSize(f, 1<<20)
	if _, err = scaledata.Generate(w, func() (io.ReadCloser, error) { return os.Open(real) }, n); err == nil {
		err = w.Flush()
	}
	if err != nil {
		b.Fatal(err)
	}
	f.Close()

	cfg := testConfig(b)
	sink := newSink(b, cfg)
	var batch []consumers.Record
	events := 0
	flush := func() {
		if err := sink.Write(ctx, batch); err != nil {
			b.Fatalf("write: %v", err)
		}
		batch = batch[:0]
	}
	t0 := time.Now()
	_, err = csvimport.Stream(ctx, csvimport.FileSource(file), func(d csvimport.Document) error {
		evs, err := csvimport.Events(d)
		for _, e := range evs {
			batch = append(batch, consumers.Record{Topic: "t", Offset: int64(events), Key: []byte(e.AggregateID), Event: e})
			events++
		}
		if len(batch) >= 5000 {
			flush()
		}
		return err
	})
	if err != nil {
		b.Fatal(err)
	}
	flush()
	fmt.Printf("%d×: %d events projected in %.1f s\n", n, events, time.Since(t0).Seconds())

	q, _ := newQueries(b, cfg)
	load := func() string {
		l, _ := os.ReadFile("/proc/loadavg")
		return strings.Join(strings.Fields(string(l))[:3], " ")
	}
	fmt.Printf("%d×: load average before the queries %s\n", n, load())
	for _, dq := range dashboardQueries {
		var times []time.Duration
		for i := range 12 {
			t0 := time.Now()
			if err := dq.run(ctx, q); err != nil {
				b.Fatalf("%s: %v", dq.name, err)
			}
			if i >= 2 { // two warm-ups, then ten timed: p95 is the slowest of ten
				times = append(times, time.Since(t0))
			}
		}
		slices.Sort(times)
		fmt.Printf("%d×: %-13s p50 %7.1f ms  p95 %7.1f ms\n", n, dq.name,
			float64(times[len(times)/2])/1e6, float64(times[len(times)*95/100])/1e6)
	}
	if os.Getenv("ORDERSTREAM_DASHBOARD_BASELINE") == "1" {
		conn, err := analytics.Open(cfg)
		if err != nil {
			b.Fatal(err)
		}
		defer conn.Close()
		o := linesOracle{conn: conn, db: cfg.Database}
		for _, dq := range dashboardQueries {
			var times []time.Duration
			for i := range 12 {
				t0 := time.Now()
				dq.baseline(b, o)
				if i >= 2 {
					times = append(times, time.Since(t0))
				}
			}
			slices.Sort(times)
			fmt.Printf("%d×: %-13s p50 %7.1f ms  p95 %7.1f ms  (lines, the earlier read path)\n", n, dq.name,
				float64(times[len(times)/2])/1e6, float64(times[len(times)*95/100])/1e6)
		}
	}
	fmt.Printf("%d×: load average after the queries %s\n", n, load())

	want, err := testfixture.ComputeExpectedCopies(real, n)
	if err != nil {
		b.Fatal(err)
	}
	sum, err := q.Summary(ctx, analytics.Filter{})
	if err != nil {
		b.Fatal(err)
	}
	if !sum.NetRevenue.Equal(want.Total.Net) || sum.Orders != int64(want.Total.Orders) || sum.Lines != int64(want.Total.Lines) {
		b.Fatalf("%d×: summary net %s orders %d lines %d, oracle %s %d %d", n, sum.NetRevenue, sum.Orders, sum.Lines,
			want.Total.Net, want.Total.Orders, want.Total.Lines)
	}
	fmt.Printf("%d×: summary = oracle (net %s, %d orders, %d lines)\n", n, sum.NetRevenue, sum.Orders, sum.Lines)
}
