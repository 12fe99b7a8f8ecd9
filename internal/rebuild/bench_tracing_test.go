package rebuild

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/orderstream/orderstream/consumers"
	"github.com/orderstream/orderstream/internal/testenv"
	"github.com/orderstream/orderstream/internal/testfixture"
	"github.com/orderstream/orderstream/internal/tracing"
	"github.com/orderstream/orderstream/producer/command"
	"github.com/orderstream/orderstream/producer/csvimport"
	"github.com/orderstream/orderstream/producer/store"
	"github.com/orderstream/orderstream/schemas"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/trace/noop"
)

// Settings of BenchmarkTracingOverhead, overridable by environment.
const (
	benchTraceDocs   = 3000 // ORDERSTREAM_BENCH_TRACE_DOCS: documents of the real file imported per run
	benchTraceRounds = 3    // ORDERSTREAM_BENCH_TRACE_ROUNDS: runs with tracing off and on each
	benchTraceRatio  = "0.1"
)

// BenchmarkTracingOverhead measures what tracing costs the whole pipeline:
// the first ORDERSTREAM_BENCH_TRACE_DOCS documents of the real file imported
// through the write side while the relay and an analytics daemon run, the
// clock running from the import's start until the daemon committed every
// event. Runs alternate tracing off (no OTEL_* set) and on (tracing.Setup
// with OTEL_TRACES_SAMPLER=parentbased_traceidratio, ratio
// ORDERSTREAM_BENCH_TRACE_RATIO, default 0.1, exporting OTLP/HTTP to a local
// endpoint that reads and discards every request), each on a fresh database,
// topic and ClickHouse database, ORDERSTREAM_BENCH_TRACE_ROUNDS times each.
// Reported, as medians of each: events/s (wall clock) and events per
// CPU-second of this process (which runs the import, the relay, the daemon
// and the exporter; the services run elsewhere), and the overhead of each,
// 1 − on/off (target ≤ 5 %). On a loaded machine the wall-clock figures
// swing with the other load; the CPU figures much less.
//
//	go test ./internal/rebuild/ -run '^$' -bench TracingOverhead -benchtime 1x -timeout 30m
func BenchmarkTracingOverhead(b *testing.B) {
	docsN := envInt(b, "ORDERSTREAM_BENCH_TRACE_DOCS", benchTraceDocs)
	rounds := envInt(b, "ORDERSTREAM_BENCH_TRACE_ROUNDS", benchTraceRounds)
	ratio := os.Getenv("ORDERSTREAM_BENCH_TRACE_RATIO")
	if ratio == "" {
		ratio = benchTraceRatio
	}
	f, err := os.Open(testfixture.RealFile(b))
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	r, err := csvimport.Decompress(f)
	if err != nil {
		b.Fatal(err)
	}
	docs, _, err := csvimport.Collect(r)
	if err != nil {
		b.Fatal(err)
	}
	docs = docs[:min(docsN, len(docs))]
	collector := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.WriteHeader(http.StatusOK)
	}))
	defer collector.Close()
	defer otel.SetTracerProvider(noop.NewTracerProvider())

	rates, perCPU := map[bool][]float64{}, map[bool][]float64{}
	b.ResetTimer()
	for range b.N {
		for round := range rounds {
			for i := range 2 {
				on := (round+i)%2 == 1 // off, on; on, off; …
				rate, cpu := tracedRun(b, docs, on, collector.URL, ratio)
				rates[on], perCPU[on] = append(rates[on], rate), append(perCPU[on], cpu)
				b.Logf("round %d, tracing %v: %.0f events/s, %.0f events/CPU-s", round+1, on, rate, cpu)
			}
		}
	}
	off, on := median(rates[false]), median(rates[true])
	offCPU, onCPU := median(perCPU[false]), median(perCPU[true])
	b.ReportMetric(off, "off-events/s")
	b.ReportMetric(on, "on-events/s")
	b.ReportMetric(100*(1-on/off), "overhead-%")
	b.ReportMetric(100*(1-onCPU/offCPU), "cpu-overhead-%")
	fmt.Printf("import -> relay -> analytics, %d documents, tracing off vs on (parentbased_traceidratio %s, OTLP/HTTP), medians of %d runs each:\n"+
		"  wall clock: off %.0f events/s %v, on %.0f events/s %v: overhead %.1f%%\n"+
		"  CPU of the orderstream process: off %.0f events/CPU-s %v, on %.0f events/CPU-s %v: overhead %.1f%%\n",
		len(docs), ratio, rounds, off, round0(rates[false]), on, round0(rates[true]), 100*(1-on/off),
		offCPU, round0(perCPU[false]), onCPU, round0(perCPU[true]), 100*(1-onCPU/offCPU))
}

// cpuTime returns the user and system CPU time of this process so far.
func cpuTime(b *testing.B) time.Duration {
	b.Helper()
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// tracedRun imports docs into a fresh pipeline with tracing on or off and
// returns events/s from the import's start to the daemon's last commit, and
// events per CPU-second of this process over the same span (the export of
// the spans still buffered at the end included).
func tracedRun(b *testing.B, docs []csvimport.Document, on bool, endpoint, ratio string) (rate, perCPU float64) {
	b.Helper()
	shutdown := func(context.Context) error { return nil }
	otel.SetTracerProvider(noop.NewTracerProvider())
	if on {
		b.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint)
		b.Setenv("OTEL_TRACES_SAMPLER", "parentbased_traceidratio")
		b.Setenv("OTEL_TRACES_SAMPLER_ARG", ratio)
		var err error
		if shutdown, err = tracing.Setup(context.Background(), tracing.Config{Service: "orderstream-bench"}); err != nil {
			b.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	m := analyticsModel(b)
	pl := startPipeline(b, m)
	defer pl.stop()
	v, err := schemas.NewValidator()
	if err != nil {
		b.Fatal(err)
	}
	im, err := csvimport.New(csvimport.Config{}, command.NewHandler(store.NewRepository(pl.pool, v), store.IsConflict), csvimport.WithLogger(testLog(b)))
	if err != nil {
		b.Fatal(err)
	}
	adm := admin(b, testenv.KafkaBrokers(b))
	start, cpu0 := time.Now(), cpuTime(b)
	sum, err := im.Import(ctx, docs)
	if err != nil {
		b.Fatal(err)
	}
	for {
		g, err := consumers.InspectGroup(ctx, adm, pl.topic, pl.groups[0])
		var committed int64
		for _, p := range g.Partitions {
			committed += max(p.Committed, 0)
		}
		if err == nil && committed >= int64(sum.Events) {
			break
		}
		if ctx.Err() != nil {
			b.Fatalf("daemon committed %d of %d events: %v", committed, sum.Events, ctx.Err())
		}
		time.Sleep(50 * time.Millisecond) // polling interval
	}
	rate = float64(sum.Events) / time.Since(start).Seconds()
	sctx, scancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer scancel()
	if err := shutdown(sctx); err != nil {
		b.Fatal(err)
	}
	return rate, float64(sum.Events) / (cpuTime(b) - cpu0).Seconds()
}

func envInt(b *testing.B, name string, def int) int {
	b.Helper()
	s := os.Getenv(name)
	if s == "" {
		return def
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 {
		b.Fatalf("%s=%q: want a positive integer", name, s)
	}
	return n
}

func median(xs []float64) float64 {
	s := slices.Sorted(slices.Values(xs))
	if len(s) == 0 {
		return 0
	}
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func round0(xs []float64) []int {
	out := make([]int, len(xs))
	for i, x := range xs {
		out[i] = int(x + 0.5)
	}
	return out
}
