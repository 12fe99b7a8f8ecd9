package scaledata_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/jackc/pgx/v5"
	"github.com/orderstream/orderstream/internal/scaledata"
	"github.com/orderstream/orderstream/internal/testenv"
	"github.com/orderstream/orderstream/internal/testfixture"
	"github.com/shopspring/decimal"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// BenchmarkScale measures the cost curve (make bench-scale): for each N of
// ORDERSTREAM_SCALES (default "1,3,10") it generates N copies of the real
// file and runs the whole pipeline on them with bin/orderstream (built by
// make) in a private PostgreSQL database, Kafka topic, ClickHouse database
// and index prefix, dropped at the end: import; relay (started on the
// backlog); the analytics, then the search daemon (each on the full topic);
// a shadow rebuild of each read model; p50/p95 of the dashboard and search
// queries through the API; bytes on disk per line in every store; the peak
// RSS of every process. It checks the analytics summary against the
// oracle (testfixture.ComputeExpectedCopies) and prints one table.
func BenchmarkScale(b *testing.B) {
	scales := []int{1, 3, 10}
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
	bin := filepath.Join(testfixture.ModuleRoot(b), "bin", "orderstream")
	if _, err := os.Stat(bin); err != nil {
		b.Fatalf("%s: %v (make build)", bin, err)
	}
	var results []*scaleResult
	for b.Loop() {
		for _, n := range scales {
			r := runScale(b, bin, n)
			results = append(results, r)
			printTable(os.Stdout, results)
		}
	}
}

type scaleResult struct {
	copies                                   int
	docs, events, lines                      int
	importDocsPerS, relayPerS, analyticsPerS float64
	searchDocsPerS                           float64
	rebuild                                  map[string]time.Duration
	latency                                  map[string][2]time.Duration // p50, p95
	failed                                   map[string]int              // queries answered with an error
	bytesPerLine                             map[string]float64
	rssMiB                                   map[string]float64
	exact                                    string
}

var queries = []struct{ name, path string }{
	{"summary", "/api/v1/analytics/summary"},
	{"by day", "/api/v1/analytics/revenue?by=day"},
	{"by month", "/api/v1/analytics/revenue?by=month"},
	{"by country", "/api/v1/analytics/revenue?by=country"},
	{"top products", "/api/v1/analytics/top-products"},
	{"one month", "/api/v1/analytics/summary?from=2011-11-01&to=2011-11-30"},
	{"one country", "/api/v1/analytics/summary?country=France"},
	{"search text", "/api/v1/orders/search?q=heart"},
	{"search product", "/api/v1/orders/search?product=85123A"},
	{"search filters+facets", "/api/v1/orders/search?country=France&kind=sale&from=2011-01-01&to=2011-06-30"},
}

// proc is a started child process of the benchmark.
type proc struct {
	cmd     *exec.Cmd
	log     string
	rss     *peakRSS
	stopped bool
}

// start runs bin with args, output to dir/name.log; the process is stopped
// at the end of the benchmark if it still runs (before its database,
// topic and indexes are dropped).
func start(b *testing.B, dir, name, bin string, args ...string) *proc {
	b.Helper()
	log := filepath.Join(dir, name+".log")
	f, err := os.Create(log)
	if err != nil {
		b.Fatal(err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	f.Close()
	p := &proc{cmd: cmd, log: log, rss: watchRSS(cmd.Process.Pid)}
	b.Cleanup(func() {
		if !p.stopped {
			p.stop(b)
		}
	})
	return p
}

// stop ends p with SIGTERM and returns its peak RSS in MiB.
func (p *proc) stop(b *testing.B) float64 {
	b.Helper()
	p.stopped = true
	p.rss.sample()
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	_ = p.cmd.Wait()
	return p.rss.stop()
}

// peakRSS follows the peak resident set of a running process: VmHWM of
// /proc/PID/status, sampled every 100 ms (it only grows, so the last
// sample before the exit is the peak to within the shutdown). The rusage
// of the waited-for child is not used: on Linux a child's ru_maxrss
// includes the resident set of the process it was started from (exec
// records the old memory's high-water mark), so every process the
// benchmark starts would report at least the benchmark's own peak.
type peakRSS struct {
	path string
	mu   sync.Mutex
	kb   int64
	done chan struct{}
	over chan struct{}
}

func watchRSS(pid int) *peakRSS {
	w := &peakRSS{path: fmt.Sprintf("/proc/%d/status", pid), done: make(chan struct{}), over: make(chan struct{})}
	go func() {
		defer close(w.over)
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		for {
			w.sample()
			select {
			case <-w.done:
				return
			case <-t.C:
			}
		}
	}()
	return w
}

// sample reads VmHWM once; a process that has exited reads nothing.
func (w *peakRSS) sample() {
	b, err := os.ReadFile(w.path)
	if err != nil {
		return
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			if err == nil {
				w.mu.Lock()
				w.kb = max(w.kb, kb)
				w.mu.Unlock()
			}
			return
		}
	}
}

// stop ends the sampling and returns the peak in MiB.
func (w *peakRSS) stop() float64 {
	close(w.done)
	<-w.over
	w.mu.Lock()
	defer w.mu.Unlock()
	return float64(w.kb) / 1024
}

// waitFor polls cond every 200 ms until it is true, failing after limit or
// when p (the process doing the work) exited.
func waitFor(b *testing.B, what string, limit time.Duration, p *proc, cond func() bool) time.Duration {
	b.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > limit {
			b.Fatalf("%s: not done after %s (log %s)", what, limit, p.log)
		}
		if p.cmd.ProcessState != nil || syscall.Kill(p.cmd.Process.Pid, 0) != nil || p.exited() {
			out, _ := os.ReadFile(p.log)
			b.Fatalf("%s: the process exited:\n%s", what, out)
		}
		time.Sleep(200 * time.Millisecond)
	}
	return time.Since(start)
}

// exited reports whether p has ended (reaped without blocking).
func (p *proc) exited() bool {
	var ws syscall.WaitStatus
	pid, err := syscall.Wait4(p.cmd.Process.Pid, &ws, syscall.WNOHANG, nil)
	return err == nil && pid == p.cmd.Process.Pid
}

func runScale(b *testing.B, bin string, n int) *scaleResult {
	ctx := context.Background()
	dir := b.TempDir()
	r := &scaleResult{copies: n, rebuild: map[string]time.Duration{}, latency: map[string][2]time.Duration{}, failed: map[string]int{},
		bytesPerLine: map[string]float64{}, rssMiB: map[string]float64{}}

	real := testfixture.RealFile(b)
	file := filepath.Join(dir, "copies.csv")
	f, err := os.Create(file)
	if err != nil {
		b.Fatal(err)
	}
	w := bufio.NewWriterSize(f, 1<<20)
	rows, err := scaledata.Generate(w, func() (io.ReadCloser, error) { return os.Open(real) }, n)
	if err == nil {
		err = w.Flush()
	}
	if err != nil {
		b.Fatal(err)
	}
	f.Close()
	r.lines = rows

	name := testenv.Name(fmt.Sprintf("scale%dx", n))
	pgURL := testenv.NewDatabase(b)
	brokers := testenv.KafkaBrokers(b)
	chAddr := testenv.ClickHouseAddr(b)
	searchURL := testenv.SearchURL(b)
	global := []string{"--pg-url", pgURL, "--kafka-brokers", strings.Join(brokers, ","), "--topic", name,
		"--clickhouse-addr", chAddr, "--clickhouse-database", name, "--search-url", searchURL, "--log-format", "json"}
	slot := "--slot=" + name
	prefix := "--index-prefix=" + name
	kcl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		b.Fatal(err)
	}
	adm := kadm.NewClient(kcl)
	ch, err := clickhouse.Open(&clickhouse.Options{Addr: []string{chAddr}})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { // after the daemons stopped (cleanups run last first)
		defer kcl.Close()
		defer ch.Close()
		_, _ = adm.DeleteTopics(context.Background(), name, name+".dlq")
		_, _ = adm.DeleteGroups(context.Background(), name+"-analytics", name+"-search")
		_ = ch.Exec(context.Background(), "DROP DATABASE IF EXISTS "+name)
		req, _ := http.NewRequest(http.MethodDelete, searchURL+"/"+name+"*", nil)
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
		}
	})
	run := func(args ...string) string {
		out, err := exec.Command(bin, append(args, global...)...).CombinedOutput()
		if err != nil {
			b.Fatalf("orderstream %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	run("migrate")
	run("topic", "create")
	run("analytics", "migrate")

	// The relay creates its slot, then stops: the import's events wait in
	// the WAL for the measured relay run.
	relay := start(b, dir, "relay0", bin, append([]string{"relay", slot, "--metrics-addr=127.0.0.1:61464"}, global...)...)
	waitFor(b, "relay ready", 2*time.Minute, relay, func() bool { return httpOK("http://127.0.0.1:61464/healthz") })
	relay.stop(b)

	imp := exec.Command(bin, append([]string{"import", "--progress=never", file}, global...)...)
	var output bytes.Buffer
	imp.Stdout, imp.Stderr = &output, &output
	if err := imp.Start(); err != nil {
		b.Fatalf("import: %v", err)
	}
	impRSS := watchRSS(imp.Process.Pid)
	err = imp.Wait()
	r.rssMiB["import"] = impRSS.stop()
	out := output.Bytes()
	if err != nil {
		b.Fatalf("import: %v\n%s", err, out)
	}
	m := regexp.MustCompile(`(\d+) imported.*?(\d+) events, (\d+) lines written in ([0-9.]+) s \(([0-9]+) documents/s`).FindStringSubmatch(string(out))
	if m == nil {
		b.Fatalf("import output: %s", out)
	}
	r.docs, _ = strconv.Atoi(m[1])
	r.events, _ = strconv.Atoi(m[2])
	r.importDocsPerS, _ = strconv.ParseFloat(m[5], 64)
	say := func(format string, args ...any) { fmt.Printf("%d×: "+format+"\n", append([]any{n}, args...)...) }
	say("import %.0f documents/s, peak RSS %.0f MiB", r.importDocsPerS, r.rssMiB["import"])

	topicRecords := func() int64 {
		ends, err := adm.ListEndOffsets(ctx, name)
		if err != nil {
			return -1
		}
		var sum int64
		ends.Each(func(o kadm.ListedOffset) { sum += o.Offset })
		return sum
	}
	relay = start(b, dir, "relay", bin, append([]string{"relay", slot, "--metrics-addr=127.0.0.1:61464"}, global...)...)
	d := waitFor(b, "relay", time.Hour, relay, func() bool { return topicRecords() >= int64(r.events) })
	r.relayPerS = float64(r.events) / d.Seconds()
	say("relay %.0f events/s", r.relayPerS)

	committed := func(group string) int64 {
		offs, err := adm.FetchOffsets(ctx, group)
		if err != nil {
			return -1
		}
		var sum int64
		offs.Each(func(o kadm.OffsetResponse) {
			if o.Topic == name {
				sum += o.At
			}
		})
		return sum
	}
	daemons := map[string]*proc{}
	for i, proj := range []string{"analytics", "search"} {
		group := name + "-" + proj
		args := []string{"consume", proj, "--group=" + group, slot, "--instance-id=none"}
		if proj == "search" {
			args = append(args, prefix)
		}
		p := start(b, dir, proj, bin, append(append(args,
			fmt.Sprintf("--metrics-addr=127.0.0.1:%d", 61465+i)), global...)...)
		daemons[proj] = p
		d := waitFor(b, proj, time.Hour, p, func() bool { return committed(group) >= int64(r.events) })
		if proj == "analytics" {
			r.analyticsPerS = float64(r.events) / d.Seconds()
		} else {
			r.searchDocsPerS = float64(r.docs) / d.Seconds()
		}
		say("%s caught up in %.1f s", proj, d.Seconds())
	}

	// Bytes on disk per line, before the rebuilds add generations.
	var pgBytes int64
	conn, err := pgx.Connect(ctx, pgURL)
	if err != nil {
		b.Fatal(err)
	}
	if err := conn.QueryRow(ctx, `SELECT pg_total_relation_size('orders') + pg_total_relation_size('order_lines') + pg_total_relation_size('outbox')`).Scan(&pgBytes); err != nil {
		b.Fatal(err)
	}
	conn.Close(ctx)
	r.bytesPerLine["postgres"] = float64(pgBytes) / float64(r.lines)
	dirs, err := adm.DescribeAllLogDirs(ctx, nil)
	if err == nil {
		var kb int64
		dirs.Each(func(d kadm.DescribedLogDir) {
			d.Topics.Each(func(p kadm.DescribedLogDirPartition) {
				if p.Topic == name {
					kb += p.Size
				}
			})
		})
		r.bytesPerLine["kafka"] = float64(kb) / float64(r.lines)
	}
	var chBytes uint64
	if err := ch.QueryRow(ctx, `SELECT sum(bytes_on_disk) FROM system.parts WHERE database = ? AND active`, name).Scan(&chBytes); err == nil {
		r.bytesPerLine["clickhouse"] = float64(chBytes) / float64(r.lines)
	}
	var stats struct {
		All struct {
			Primaries struct {
				Store struct {
					Bytes int64 `json:"size_in_bytes"`
				} `json:"store"`
			} `json:"primaries"`
		} `json:"_all"`
	}
	if getJSON(searchURL+"/"+name+"*/_stats/store", &stats) == nil {
		r.bytesPerLine["search"] = float64(stats.All.Primaries.Store.Bytes) / float64(r.lines)
	}

	say("bytes/line %v", r.bytesPerLine)

	// Queries against the serving read models, through the API.
	api := start(b, dir, "api", bin, append([]string{"api", "--auth=none", "--listen=127.0.0.1:61480", prefix}, global...)...)
	waitFor(b, "api ready", time.Minute, api, func() bool { return httpOK("http://127.0.0.1:61480/healthz") })
	for _, q := range queries {
		var times []time.Duration
		for i := range 12 {
			t0 := time.Now()
			if !httpOK("http://127.0.0.1:61480" + q.path) {
				r.failed[q.name]++ // a slow or failed answer (the API's 15 s deadline) counts, with its time
			}
			if i >= 2 { // two warm-ups, then ten measured: p95 is the slowest of ten
				times = append(times, time.Since(t0))
			}
		}
		slices.Sort(times)
		r.latency[q.name] = [2]time.Duration{times[len(times)/2], times[len(times)*95/100]}
		say("%s p50 %s p95 %s, %d failed", q.name, r.latency[q.name][0], r.latency[q.name][1], r.failed[q.name])
	}
	var sum struct {
		NetRevenue json.RawMessage `json:"net_revenue"`
		Orders     int             `json:"orders"`
	}
	if err := getJSON("http://127.0.0.1:61480/api/v1/analytics/summary", &sum); err != nil {
		b.Fatal(err)
	}
	want, err := testfixture.ComputeExpectedCopies(real, n)
	if err != nil {
		b.Fatal(err)
	}
	net, _ := decimal.NewFromString(strings.Trim(string(sum.NetRevenue), `"`))
	r.exact = "ok"
	if !net.Equal(want.Total.Net) || sum.Orders != want.Total.Orders || r.docs != want.Total.Documents || r.lines != want.Total.Lines {
		r.exact = fmt.Sprintf("DRIFT: net %s orders %d docs %d, oracle %s %d %d", sum.NetRevenue, sum.Orders, r.docs, want.Total.Net, want.Total.Orders, want.Total.Documents)
	}
	r.rssMiB["api"] = api.stop(b)

	for _, proj := range []string{"analytics", "search"} {
		t0 := time.Now()
		args := []string{"replay", proj, slot, "--progress=never"}
		if proj == "search" {
			args = append(args, prefix)
		}
		run(args...)
		r.rebuild[proj] = time.Since(t0)
		say("rebuild %s %.1f s", proj, r.rebuild[proj].Seconds())
	}
	r.rssMiB["relay"] = relay.stop(b)
	for proj, p := range daemons {
		r.rssMiB["consume "+proj] = p.stop(b)
	}
	return r
}

func httpOK(url string) bool {
	resp, err := http.Get(url)
	if err != nil {
		return false
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode == http.StatusOK
}

func getJSON(url string, v any) error {
	resp, err := http.Get(url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return json.NewDecoder(resp.Body).Decode(v)
}

func printTable(w io.Writer, rs []*scaleResult) {
	row := func(name string, f func(r *scaleResult) string) {
		fmt.Fprintf(w, "%-36s", name)
		for _, r := range rs {
			fmt.Fprintf(w, " %16s", f(r))
		}
		fmt.Fprintln(w)
	}
	num := func(v float64) string { return strconv.FormatFloat(v, 'f', 0, 64) }
	ms := func(d time.Duration) string { return strconv.FormatFloat(float64(d)/1e6, 'f', 1, 64) }
	fmt.Fprintln(w)
	row("copies of the real file", func(r *scaleResult) string { return fmt.Sprintf("%d×", r.copies) })
	row("documents / events / lines", func(r *scaleResult) string { return fmt.Sprintf("%d/%d/%d", r.docs, r.events, r.lines) })
	row("import documents/s", func(r *scaleResult) string { return num(r.importDocsPerS) })
	row("relay events/s", func(r *scaleResult) string { return num(r.relayPerS) })
	row("analytics events/s", func(r *scaleResult) string { return num(r.analyticsPerS) })
	row("search documents/s", func(r *scaleResult) string { return num(r.searchDocsPerS) })
	for _, p := range []string{"analytics", "search"} {
		row("rebuild "+p+" s", func(r *scaleResult) string { return strconv.FormatFloat(r.rebuild[p].Seconds(), 'f', 1, 64) })
	}
	for _, q := range queries {
		row(q.name+" p50/p95 ms", func(r *scaleResult) string {
			l, f := r.latency[q.name], ""
			if r.failed[q.name] > 0 {
				f = fmt.Sprintf(" (%d failed)", r.failed[q.name])
			}
			return ms(l[0]) + "/" + ms(l[1]) + f
		})
	}
	for _, s := range []string{"postgres", "kafka", "clickhouse", "search"} {
		row("bytes/line "+s, func(r *scaleResult) string { return num(r.bytesPerLine[s]) })
	}
	for _, p := range []string{"import", "relay", "consume analytics", "consume search", "api"} {
		row("peak RSS MiB "+p, func(r *scaleResult) string { return num(r.rssMiB[p]) })
	}
	row("analytics summary vs oracle", func(r *scaleResult) string { return r.exact })
}
