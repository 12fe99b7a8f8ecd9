package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/orderstream/orderstream/internal/api"
	"github.com/orderstream/orderstream/internal/load"
	"github.com/orderstream/orderstream/internal/testenv"
	"github.com/orderstream/orderstream/internal/testfixture"
)

// startStack runs, in this process and against the shared services, the
// relay, both projection daemons (with consumeFlags) and the API with
// commands and --auth=none, all in a PostgreSQL database, Kafka topic,
// ClickHouse database and index prefix of their own, and returns the API's
// base URL. Everything stops, and is dropped, at the test's cleanup.
func startStack(t testing.TB, consumeFlags ...string) string {
	t.Helper()
	return startStackStages(t, consumeFlags...).api
}

// stack is a running startStack: the API's base URL and the /metrics URLs
// of the relay and of each projection daemon.
type stack struct {
	api, relayMetrics string
	daemonMetrics     map[string]string // projection → /metrics URL
}

// stages is the commit → queryable breakdown the stack's daemons measure.
func (s stack) stages() []load.Stage {
	return load.Stages(s.relayMetrics, s.daemonMetrics["analytics"], s.daemonMetrics["search"])
}

func startStackStages(t testing.TB, consumeFlags ...string) stack {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	setup, setupCancel := context.WithTimeout(ctx, 2*time.Minute)
	defer setupCancel()
	_, aflags := analyticsModel(setup, t)
	_, sflags := searchModel(setup, t)
	prefix := sflags[len(sflags)-2:] // --index-prefix P: of the API and the search daemon only
	brokers := testenv.KafkaBrokers(t)
	topic := testfixture.ProduceTopic(t, brokers, nil)
	common := []string{"--pg-url", testenv.NewDatabase(t), "--kafka-brokers", strings.Join(brokers, ","),
		"--topic", topic, "--log-level", "error"}
	common = append(append(common, aflags...), sflags[:len(sflags)-2]...)
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	start := func(args ...string) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			root := newRootCmd()
			root.SetOut(io.Discard)
			root.SetErr(io.Discard)
			root.SetArgs(append(args, common...))
			if err := root.ExecuteContext(ctx); err != nil && ctx.Err() == nil {
				errs <- fmt.Errorf("%s: %w", args[0], err)
			}
		}()
	}
	t.Cleanup(func() { cancel(); wg.Wait() })
	if err := newRootWith(ctx, append([]string{"migrate"}, common...)...); err != nil {
		t.Fatalf("migrate: %v", err)
	}
	relayAddr, apiAddr := freeAddr(t), freeAddr(t)
	st := stack{api: "http://" + apiAddr, relayMetrics: "http://" + relayAddr + "/metrics", daemonMetrics: map[string]string{}}
	start("relay", "--slot", testenv.Name("load"), "--metrics-addr", relayAddr, "--partitions", strconv.Itoa(int(testfixture.TopicPartitions)))
	for _, p := range []string{"analytics", "search"} {
		addr := freeAddr(t)
		st.daemonMetrics[p] = "http://" + addr + "/metrics"
		args := append([]string{"consume", p, "--group", testenv.Name(p), "--metrics-addr", addr, "--instance-id", "none"}, consumeFlags...)
		if p == "search" {
			args = append(args, prefix...)
		}
		start(args...)
	}
	start(append([]string{"api", "--auth", "none", "--listen", apiAddr, "--wait-limit", "60s"}, prefix...)...)
	for _, u := range []string{"http://" + relayAddr + "/healthz", "http://" + apiAddr + "/healthz", st.daemonMetrics["analytics"], st.daemonMetrics["search"]} {
		waitHTTP(setup, t, u, errs)
	}
	return st
}

func newRootWith(ctx context.Context, args ...string) error {
	root := newRootCmd()
	var errOut bytes.Buffer
	root.SetOut(io.Discard)
	root.SetErr(&errOut)
	root.SetArgs(args)
	if err := root.ExecuteContext(ctx); err != nil {
		return fmt.Errorf("%w: %s", err, errOut.String())
	}
	return nil
}

// waitHTTP polls url until it answers 200, failing when a component ends
// (errs) or ctx does.
func waitHTTP(ctx context.Context, t testing.TB, url string, errs <-chan error) {
	t.Helper()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		if resp, err := http.Get(url); err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		select {
		case err := <-errs:
			t.Fatalf("stack: %v", err)
		case <-ctx.Done():
			t.Fatalf("%s did not answer 200: %v", url, ctx.Err())
		case <-tick.C:
		}
	}
}

func httpDo(t testing.TB, method, url, body string, header ...string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, b
}

// TestReadYourWritesEndToEnd: through the relay and both daemons, a query
// carrying a command's consistency token answers with the write applied,
// in each read model, while the same query without it (sent first, at
// once) does not see it yet: the read models lag by design.
func TestReadYourWritesEndToEnd(t *testing.T) {
	t.Parallel()
	base := startStack(t)
	resp, b := httpDo(t, "POST", base+"/api/v1/orders", `{"customer_id":"17850","country":"Iceland","lines":[{"stock_code":"22728","quantity":6,"unit_price":"2.50"},{"stock_code":"22726","quantity":1,"unit_price":"5"}]}`)
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("place: HTTP %d %s", resp.StatusCode, b)
	}
	var placed api.CommandResponse
	if err := json.Unmarshal(b, &placed); err != nil {
		t.Fatal(err)
	}
	resp, b = httpDo(t, "POST", base+"/api/v1/orders/"+placed.OrderID+"/pay", `{"amount":"20"}`, "If-Match", resp.Header.Get("ETag"))
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("pay: HTTP %d %s", resp.StatusCode, b)
	}
	tok := resp.Header.Get("Consistency-Token")
	detail := base + "/api/v1/orders/" + placed.OrderID
	day := time.Now().UTC().Format("2006-01-02")
	summary := base + "/api/v1/analytics/summary?country=Iceland&from=" + day + "&to=" + day

	// Without the token: not there yet (the read models lag by design).
	if resp, b := httpDo(t, "GET", detail, ""); resp.StatusCode == http.StatusOK && strings.Contains(string(b), `"version":2`) {
		t.Fatalf("order detail showed version 2 before any wait: the lag this test relies on is gone: %s", b)
	}
	// With it: the paid order, and the day's analytics with its 20 GBP.
	resp, b = httpDo(t, "GET", detail, "", "Consistency-Token", tok, "Prefer", "wait=9")
	var o api.Order
	if err := json.Unmarshal(b, &o); resp.StatusCode != http.StatusOK || err != nil || o.Version != 2 || o.Status != "paid" {
		t.Fatalf("order detail with the token: HTTP %d %s", resp.StatusCode, b)
	}
	resp, b = httpDo(t, "GET", detail+"?min_version=2", "")
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(b), `"version":2`) {
		t.Fatalf("order detail with min_version: HTTP %d %s", resp.StatusCode, b)
	}
	resp, b = httpDo(t, "GET", base+"/api/v1/orders/search?country=Iceland", "", "Consistency-Token", tok, "Prefer", "wait=9")
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(b), placed.OrderID) || !strings.Contains(string(b), `"status":"paid"`) {
		t.Fatalf("search with the token: HTTP %d %s", resp.StatusCode, b)
	}
	resp, b = httpDo(t, "GET", summary, "", "Consistency-Token", tok, "Prefer", "wait=9")
	var s api.Summary
	if err := json.Unmarshal(b, &s); resp.StatusCode != http.StatusOK || err != nil || s.NetRevenue.String() != "20.000" || s.Orders != 1 {
		t.Fatalf("analytics with the token: HTTP %d %s", resp.StatusCode, b)
	}
	// A version never written: 503 at the bound, naming what was applied.
	resp, b = httpDo(t, "GET", detail+"?min_version=3", "", "Prefer", "wait=1")
	if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(string(b), `"current_version":2`) {
		t.Fatalf("unwritten version: HTTP %d %s, want 503 with current_version 2", resp.StatusCode, b)
	}
}

// TestLoadShort drives the whole stack for a few seconds at a low rate and
// prints the figures (not asserted: they depend on the machine); it
// asserts only that every command succeeded and every probe arrived.
func TestLoadShort(t *testing.T) {
	t.Parallel()
	st := startStackStages(t)
	f, err := os.Open(testfixture.RealFile(t))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	shapes, err := load.Shapes(f, 20_000, 500)
	if err != nil || len(shapes) < 100 {
		t.Fatalf("%d shapes, %v", len(shapes), err)
	}
	cfg := load.Config{URL: st.api, Rate: 20, Duration: 3 * time.Second, ProbeRate: 10, ProbeWait: time.Minute, Shapes: shapes, Stages: st.stages()}
	if err := load.Warm(context.Background(), cfg); err != nil {
		t.Fatal(err)
	}
	r, err := load.Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Log("\n" + loadTable(r))
	if r.Errors > 0 || r.Orders < 50 || r.Queryable["search"].N == 0 || r.Queryable["analytics"].N == 0 || r.Late["search"]+r.Late["analytics"] > 0 {
		t.Fatalf("load run: %d orders, %d errors (first: %s), probes %+v, late %v", r.Orders, r.Errors, r.FirstError, r.Queryable, r.Late)
	}
	// Every stage saw the run's events (at least one per order).
	if len(r.Stages) != 3 {
		t.Fatalf("stages %+v, want the relay's and both daemons'", r.Stages)
	}
	for _, s := range r.Stages {
		if s.N < r.Orders {
			t.Errorf("stage %s measured %d events of %d orders", s.Name, s.N, r.Orders)
		}
	}
}

func loadTable(rs ...load.Report) string {
	var b bytes.Buffer
	_ = printLoad(&b, formatTable, rs, 0, false)
	return b.String()
}

// TestLoadBench is `make bench`'s latency table: set ORDERSTREAM_LOAD_BENCH
// to run it (it takes minutes). ORDERSTREAM_LOAD_RATES (default
// 100,500,1000), ORDERSTREAM_LOAD_DURATION (default 15s) and
// ORDERSTREAM_LOAD_CONSUME_FLAGS (flags of both projection daemons, such as
// "--batch-max-wait 50ms") shape it; the rate then grows by half while it
// is sustained (ORDERSTREAM_LOAD_CEILING=0: not). Figures are printed,
// never asserted: the latency table and its breakdown by stage.
func TestLoadBench(t *testing.T) {
	if os.Getenv("ORDERSTREAM_LOAD_BENCH") == "" {
		t.Skip("set ORDERSTREAM_LOAD_BENCH=1 to run the load benchmark (make bench does)")
	}
	var rates []float64
	for _, s := range strings.Split(envOr("ORDERSTREAM_LOAD_RATES", "100,500,1000"), ",") {
		r, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
		if err != nil {
			t.Fatalf("ORDERSTREAM_LOAD_RATES: %q is not a rate", s)
		}
		rates = append(rates, r)
	}
	d, err := time.ParseDuration(envOr("ORDERSTREAM_LOAD_DURATION", "15s"))
	if err != nil {
		t.Fatalf("ORDERSTREAM_LOAD_DURATION: %v", err)
	}
	consume := strings.Fields(os.Getenv("ORDERSTREAM_LOAD_CONSUME_FLAGS"))
	st := startStackStages(t, consume...)
	f, err := os.Open(testfixture.RealFile(t))
	if err != nil {
		t.Fatal(err)
	}
	shapes, err := load.Shapes(f, 100_000, 5000)
	_ = f.Close()
	if err != nil {
		t.Fatal(err)
	}
	cfg := load.Config{URL: st.api, Duration: d, Shapes: shapes, Rate: rates[0], Stages: st.stages()}
	if err := load.Warm(context.Background(), cfg); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	ceiling := os.Getenv("ORDERSTREAM_LOAD_CEILING") != "0"
	fmt.Printf("rate %.0f orders/s starts at %s\n", rates[0], time.Now().UTC().Format(time.RFC3339Nano))
	reports, best, err := loadSteps(context.Background(), cfg, rates, ceiling, func(r load.Report) {
		fmt.Printf("rate %.0f orders/s done at %s: %d orders, %d errors\n%s", r.Rate, time.Now().UTC().Format(time.RFC3339Nano), r.Orders, r.Errors, loadTable(r))
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := printLoad(&out, formatTable, reports, best, ceiling); err != nil {
		t.Fatal(err)
	}
	fmt.Printf("consume flags: %q\n%s", consume, out.String())
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}
