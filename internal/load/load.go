// Package load drives the command API at a fixed rate with orders shaped
// like the real file's documents and their lifecycles, and measures what a
// shop sees: the latency of each command, and the commit → queryable
// latency of each read model (from a command's answer to its version being
// visible through the API's read-your-writes wait).
//
// Measurement: an order's commands run one after the other, each with
// If-Match (the previous ETag) and a fresh Idempotency-Key. Every k-th order
// (k so that at most Config.ProbeRate orders a second are probed) is probed
// after its last command: one GET per read model carrying its consistency
// token and Prefer: wait (Config.ProbeWait, default 10 s), timed from the moment the command's answer
// arrived (so the commit is at most the answer's transfer time earlier)
// until the 200; the API polls the read model after 20 ms, then at
// intervals growing by half to 100 ms, so a figure is late by up to 20 ms
// below 100 ms and up to 100 ms above 400 ms. A probe that is still behind after the wait counts
// as late, and an order whose command failed as an error.
package load

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/orderstream/orderstream/internal/api"
	"github.com/orderstream/orderstream/producer/csvimport"
	"github.com/orderstream/orderstream/schemas"
	"github.com/shopspring/decimal"
)

// Defaults of Config.
const (
	DefaultDuration  = 20 * time.Second
	DefaultProbeRate = 10 // probed orders a second
	// DefaultProbeWait is the Prefer: wait of a probe.
	DefaultProbeWait = 10 * time.Second
	// maxConns bounds the default client's connections (file descriptors).
	maxConns = 256
)

// ReadModels are the read models a probe checks, in report order.
var ReadModels = []string{"search", "analytics"}

// Config is one run at one rate.
type Config struct {
	// URL is the API's base URL (http://127.0.0.1:8080). Required.
	URL string
	// Token is a bearer access token with orders:write, orders:search and
	// analytics:read; "" for a server with --auth=none.
	Token string
	// Rate is orders started a second (each runs its whole lifecycle).
	// Required, above 0.
	Rate float64
	// Duration is how long orders are started; default DefaultDuration.
	// The run then waits for the orders and probes in flight.
	Duration time.Duration
	// ProbeRate bounds the orders probed a second (each probe is one GET
	// per read model that may wait up to ProbeWait); default
	// DefaultProbeRate.
	ProbeRate float64
	// ProbeWait is how long a probe asks the API to wait (Prefer: wait,
	// whole seconds, at most the API's --wait-limit); a probe still behind
	// after it counts as late. Default DefaultProbeWait.
	ProbeWait time.Duration
	// Shapes are the orders to sample from (Shapes); required.
	Shapes []Shape
	// Client is the HTTP client; default one of at most 256 connections
	// (requests beyond wait for one, and their latency counts the wait).
	Client *http.Client
	// Stages are scraped before and after the run for the breakdown of
	// commit → queryable (Report.Stages); none by default.
	Stages []Stage
}

func (c *Config) setDefaults() {
	if c.Duration == 0 {
		c.Duration = DefaultDuration
	}
	if c.ProbeRate == 0 {
		c.ProbeRate = DefaultProbeRate
	}
	if c.ProbeWait == 0 {
		c.ProbeWait = DefaultProbeWait
	}
	if c.Client == nil {
		c.Client = &http.Client{Timeout: max(30*time.Second, c.ProbeWait+10*time.Second), Transport: &http.Transport{
			MaxConnsPerHost: maxConns, MaxIdleConns: maxConns, MaxIdleConnsPerHost: maxConns, IdleConnTimeout: 30 * time.Second}}
	}
}

// Validate reports every problem of c at once.
func (c Config) Validate() error {
	var errs []error
	if u, err := url.Parse(c.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		errs = append(errs, fmt.Errorf("--url %q: want the API's base URL, such as http://127.0.0.1:8080", c.URL))
	}
	if c.Rate <= 0 {
		errs = append(errs, fmt.Errorf("rate %g orders/s: want more than 0", c.Rate))
	}
	if c.Duration < 0 || c.ProbeRate < 0 {
		errs = append(errs, fmt.Errorf("duration %s, probe rate %g: want positive values", c.Duration, c.ProbeRate))
	}
	if c.ProbeWait < 0 || c.ProbeWait%time.Second != 0 {
		errs = append(errs, fmt.Errorf("probe wait %s: want whole seconds above 0", c.ProbeWait))
	}
	if len(c.Shapes) == 0 {
		errs = append(errs, errors.New("no order shapes: give --file, a CSV of the Online Retail format"))
	}
	return errors.Join(errs...)
}

// Shape is one order's content, sampled from a real document.
type Shape struct {
	Customer string
	Country  string
	Lines    []api.LineRequest
	Total    decimal.Decimal
}

// Shapes reads up to maxDocs sales (positive quantities, 1 to 100 lines)
// from the Online Retail CSV r (plain or gzip) as order shapes, stopping
// after maxLines lines of the file.
func Shapes(r io.Reader, maxLines, maxDocs int) ([]Shape, error) {
	dr, err := csvimport.Decompress(r)
	if err != nil {
		return nil, err
	}
	docs, _, err := csvimport.Collect(&lineLimit{r: dr, left: maxLines})
	if err != nil {
		return nil, err
	}
	var out []Shape
	for _, d := range docs {
		if d.Err() != nil || d.Kind != schemas.KindSale || len(d.Lines) == 0 || len(d.Lines) > 100 {
			continue
		}
		s := Shape{Customer: d.CustomerID, Country: d.Country}
		ok := true
		for _, l := range d.Lines {
			if l.Quantity <= 0 || !l.UnitPrice.Amount.IsPositive() {
				ok = false
				break
			}
			q := l.Quantity
			s.Lines = append(s.Lines, api.LineRequest{StockCode: l.StockCode, Description: l.Description, Quantity: &q,
				UnitPrice: &api.Amount{Decimal: l.UnitPrice.Amount}})
			s.Total = s.Total.Add(l.UnitPrice.Amount.Mul(decimal.NewFromInt(q)))
		}
		if ok {
			out = append(out, s)
		}
		if len(out) == maxDocs {
			break
		}
	}
	return out, nil
}

// lineLimit reads r up to its left-th newline (the last row whole).
type lineLimit struct {
	r    io.Reader
	left int
}

func (l *lineLimit) Read(p []byte) (int, error) {
	if l.left <= 0 {
		return 0, io.EOF
	}
	n, err := l.r.Read(p)
	for i := 0; i < n; i++ {
		if p[i] == '\n' {
			if l.left--; l.left == 0 {
				return i + 1, nil
			}
		}
	}
	return n, err
}

// Latency is a distribution's figures.
type Latency struct {
	N             int
	P50, P99, Max time.Duration
}

func latencyOf(d []time.Duration) Latency {
	if len(d) == 0 {
		return Latency{}
	}
	slices.Sort(d)
	q := func(p float64) time.Duration { return d[min(len(d)-1, int(p*float64(len(d))))] }
	return Latency{N: len(d), P50: q(0.50), P99: q(0.99), Max: d[len(d)-1]}
}

// Report is the outcome of one Run.
type Report struct {
	Rate      float64       // orders/s asked for
	Achieved  float64       // orders/s started
	Duration  time.Duration // of the starting phase
	Orders    int           // orders started
	Commands  int           // commands answered 2xx
	Errors    int           // commands that failed (first error in FirstError)
	Command   Latency
	Queryable map[string]Latency // commit → queryable per read model
	Late      map[string]int     // probes still behind after the wait
	// FirstError describes the first failed command or probe.
	FirstError string
	// Stages is the breakdown of commit → queryable by the daemons' own
	// histograms (Config.Stages), over every event they handled during
	// the run, in Config.Stages order.
	Stages []StageLatency `json:",omitempty"`
}

// StageLatency is one Stage's figures over a run; its quantiles are the
// upper bounds of the histogram buckets that hold them (a factor of 2
// apart), so read them as "at most".
type StageLatency struct {
	Name string
	Latency
}

// Sustained reports whether the run kept up: it started at least 95 % of
// the asked orders, no command failed, no probe was late and command p99
// stayed under a second.
func (r Report) Sustained() bool {
	late := 0
	for _, n := range r.Late {
		late += n
	}
	return r.Achieved >= 0.95*r.Rate && r.Errors == 0 && late == 0 && r.Command.P99 < time.Second
}

// runner is one Run's state.
type runner struct {
	cfg Config
	mu  sync.Mutex
	rep Report
	cmd []time.Duration
	vis map[string][]time.Duration
}

// Run drives the API at cfg.Rate for cfg.Duration and reports. ctx ends
// it early (the report covers what ran).
func Run(ctx context.Context, cfg Config) (Report, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return Report{}, err
	}
	r := &runner{cfg: cfg, vis: map[string][]time.Duration{}}
	r.rep = Report{Rate: cfg.Rate, Queryable: map[string]Latency{}, Late: map[string]int{}}
	before := make([]buckets, len(cfg.Stages))
	for i, st := range cfg.Stages {
		var err error
		if before[i], err = scrape(ctx, cfg.Client, st.URL, st.Metric); err != nil {
			return Report{}, fmt.Errorf("stage %s: %w", st.Name, err)
		}
	}
	probeEvery := max(1, int(cfg.Rate/cfg.ProbeRate+0.5))
	interval := time.Duration(float64(time.Second) / cfg.Rate)
	var wg sync.WaitGroup
	start := time.Now()
	rng := rand.New(rand.NewPCG(uint64(start.UnixNano()), 1))
	for n := 0; ; n++ {
		next := start.Add(time.Duration(n) * interval)
		if next.Sub(start) >= cfg.Duration || ctx.Err() != nil {
			break
		}
		if d := time.Until(next); d > 0 {
			select {
			case <-time.After(d):
			case <-ctx.Done():
			}
		}
		shape, life := cfg.Shapes[rng.IntN(len(cfg.Shapes))], lifecycle(rng.Float64())
		probe := n%probeEvery == 0
		wg.Add(1)
		go func() {
			defer wg.Done()
			r.order(ctx, shape, life, probe)
		}()
		r.mu.Lock()
		r.rep.Orders++
		r.mu.Unlock()
	}
	r.rep.Duration = time.Since(start)
	wg.Wait()
	r.rep.Achieved = float64(r.rep.Orders) / r.rep.Duration.Seconds()
	r.rep.Command = latencyOf(r.cmd)
	for _, m := range ReadModels {
		r.rep.Queryable[m] = latencyOf(r.vis[m])
	}
	for i, st := range cfg.Stages {
		after, err := scrape(ctx, cfg.Client, st.URL, st.Metric)
		if err != nil {
			return r.rep, fmt.Errorf("stage %s: %w", st.Name, err)
		}
		r.rep.Stages = append(r.rep.Stages, StageLatency{Name: st.Name, Latency: after.sub(before[i]).latency()})
	}
	return r.rep, nil
}

// Lifecycles, with their share of orders (the real file has only placed and
// paid sales; these shares are an assumption of a shop's traffic):
// 70 % placed → paid → shipped; 10 % placed → cancelled; 5 % placed → paid
// → cancelled; 10 % placed → paid → shipped → partly refunded; 5 % placed →
// paid → shipped → refunded in full.
func lifecycle(x float64) []string {
	switch {
	case x < 0.70:
		return []string{"pay", "ship"}
	case x < 0.80:
		return []string{"cancel"}
	case x < 0.85:
		return []string{"pay", "cancel"}
	case x < 0.95:
		return []string{"pay", "ship", "refund-part"}
	}
	return []string{"pay", "ship", "refund-all"}
}

// order runs one order's lifecycle and, when probe, probes its last
// version in every read model.
func (r *runner) order(ctx context.Context, s Shape, life []string, probe bool) {
	res, at, err := r.command(ctx, "/api/v1/orders", "", api.PlaceRequest{CustomerID: s.Customer, Country: s.Country, Lines: s.Lines})
	if err != nil {
		r.fail("place", err)
		return
	}
	for _, step := range life {
		var body api.ChangeRequest
		name := step
		switch step {
		case "pay":
			body.Amount = &api.Amount{Decimal: s.Total}
		case "ship":
			body.Carrier = "Royal Mail"
		case "cancel":
			body.Reason = "customer changed their mind"
		case "refund-part", "refund-all":
			name = "refund"
			amount := s.Total
			if step == "refund-part" {
				amount = s.Total.Div(decimal.NewFromInt(2)).Round(2)
			}
			body.Amount, body.Reason = &api.Amount{Decimal: amount}, "returned"
		}
		res, at, err = r.command(ctx, "/api/v1/orders/"+url.PathEscape(res.OrderID)+"/"+name, strconv.Quote(strconv.FormatInt(res.Version, 10)), body)
		if err != nil {
			r.fail(name, err)
			return
		}
	}
	if !probe {
		return
	}
	var wg sync.WaitGroup
	for _, m := range ReadModels {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r.probe(ctx, m, res, at)
		}()
	}
	wg.Wait()
}

func (r *runner) fail(what string, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.rep.Errors++
	if r.rep.FirstError == "" {
		r.rep.FirstError = what + ": " + err.Error()
	}
}

// command posts body to path and returns the answer and when it arrived.
func (r *runner) command(ctx context.Context, path, ifMatch string, body any) (api.CommandResponse, time.Time, error) {
	b, err := json.Marshal(body)
	if err != nil {
		return api.CommandResponse{}, time.Time{}, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimSuffix(r.cfg.URL, "/")+path, bytes.NewReader(b))
	if err != nil {
		return api.CommandResponse{}, time.Time{}, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Idempotency-Key", uuid.NewString())
	if ifMatch != "" {
		req.Header.Set("If-Match", ifMatch)
	}
	r.auth(req)
	start := time.Now()
	resp, err := r.cfg.Client.Do(req)
	if err != nil {
		return api.CommandResponse{}, time.Time{}, err
	}
	defer resp.Body.Close()
	rb, err := io.ReadAll(resp.Body)
	at := time.Now()
	if err != nil {
		return api.CommandResponse{}, at, err
	}
	if resp.StatusCode/100 != 2 {
		return api.CommandResponse{}, at, fmt.Errorf("HTTP %d: %s", resp.StatusCode, bytes.TrimSpace(rb))
	}
	var cr api.CommandResponse
	if err := json.Unmarshal(rb, &cr); err != nil {
		return cr, at, fmt.Errorf("decode answer: %w", err)
	}
	r.mu.Lock()
	r.rep.Commands++
	r.cmd = append(r.cmd, at.Sub(start))
	r.mu.Unlock()
	return cr, at, nil
}

func (r *runner) auth(req *http.Request) {
	if r.cfg.Token != "" {
		req.Header.Set("Authorization", "Bearer "+r.cfg.Token)
	}
}

// probe waits, through the API, for model to show the order at res's
// version and records the time since committed.
func (r *runner) probe(ctx context.Context, model string, res api.CommandResponse, committed time.Time) {
	target := "/api/v1/orders/" + url.PathEscape(res.OrderID) + "?min_version=" + strconv.FormatInt(res.Version, 10)
	if model == "analytics" {
		day := time.Now().UTC().Format("2006-01-02")
		target = "/api/v1/analytics/summary?from=" + day + "&to=" + day
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimSuffix(r.cfg.URL, "/")+target, nil)
	if err != nil {
		r.fail(model+" probe", err)
		return
	}
	req.Header.Set("Consistency-Token", res.ConsistencyToken)
	req.Header.Set("Prefer", "wait="+strconv.Itoa(int(r.cfg.ProbeWait/time.Second)))
	r.auth(req)
	resp, err := r.cfg.Client.Do(req)
	if err != nil {
		r.fail(model+" probe", err)
		return
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	took := time.Since(committed)
	r.mu.Lock()
	defer r.mu.Unlock()
	switch resp.StatusCode {
	case http.StatusOK:
		r.vis[model] = append(r.vis[model], took)
	case http.StatusServiceUnavailable:
		r.rep.Late[model]++
	default:
		r.rep.Errors++
		if r.rep.FirstError == "" {
			r.rep.FirstError = fmt.Sprintf("%s probe: HTTP %d", model, resp.StatusCode)
		}
	}
}

// Header is the column header of Row.
const Header = "READ MODEL\tRATE/S\tACHIEVED/S\tORDERS\tCOMMANDS\tERRORS\tCMD P50\tCMD P99\tPROBES\tVISIBLE P50\tVISIBLE P99\tVISIBLE MAX\tLATE"

// Rows returns the report as tab-separated rows under Header, one per
// read model.
func (r Report) Rows() []string {
	ms := func(d time.Duration) string { return strconv.FormatInt(d.Milliseconds(), 10) + " ms" }
	var out []string
	for _, m := range ReadModels {
		q := r.Queryable[m]
		out = append(out, fmt.Sprintf("%s\t%.0f\t%.1f\t%d\t%d\t%d\t%s\t%s\t%d\t%s\t%s\t%s\t%d", m, r.Rate, r.Achieved, r.Orders, r.Commands, r.Errors,
			ms(r.Command.P50), ms(r.Command.P99), q.N, ms(q.P50), ms(q.P99), ms(q.Max), r.Late[m]))
	}
	return out
}

// StageHeader is the column header of StageRows.
const StageHeader = "RATE/S\tSTAGE\tEVENTS\tP50 ≤\tP99 ≤\tMAX ≤"

// StageRows returns the breakdown of commit → queryable (Report.Stages) as
// tab-separated rows under StageHeader, one per stage.
func (r Report) StageRows() []string {
	ms := func(d time.Duration) string { return strconv.FormatInt(d.Milliseconds(), 10) + " ms" }
	var out []string
	for _, st := range r.Stages {
		out = append(out, fmt.Sprintf("%.0f\t%s\t%d\t%s\t%s\t%s", r.Rate, st.Name, st.N, ms(st.P50), ms(st.P99), ms(st.Max)))
	}
	return out
}

// Warm places one order and waits, through the read-your-writes wait,
// until both read models show it, for at most a minute: a fresh stack's
// consumers join their groups first, which a measurement must not count.
func Warm(ctx context.Context, cfg Config) error {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return err
	}
	r := &runner{cfg: cfg, vis: map[string][]time.Duration{}, rep: Report{Late: map[string]int{}}}
	res, at, err := r.command(ctx, "/api/v1/orders", "", api.PlaceRequest{CustomerID: cfg.Shapes[0].Customer, Country: cfg.Shapes[0].Country, Lines: cfg.Shapes[0].Lines})
	if err != nil {
		return fmt.Errorf("warm-up order: %w", err)
	}
	deadline := time.Now().Add(time.Minute)
	for _, m := range ReadModels {
		for len(r.vis[m]) == 0 {
			if r.probe(ctx, m, res, at); r.rep.Errors > 0 {
				return fmt.Errorf("warm-up: %s", r.rep.FirstError)
			}
			if time.Now().After(deadline) || ctx.Err() != nil {
				return fmt.Errorf("warm-up: the %s read model did not show order %s within a minute", m, res.OrderID)
			}
		}
	}
	return nil
}
