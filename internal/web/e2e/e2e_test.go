package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"golang.org/x/sync/errgroup"

	"github.com/orderstream/orderstream/consumers"
	"github.com/orderstream/orderstream/internal/api"
	"github.com/orderstream/orderstream/internal/api/readmodel"
	"github.com/orderstream/orderstream/internal/testenv"
	"github.com/orderstream/orderstream/internal/testfixture"
	"github.com/orderstream/orderstream/internal/web"
	"github.com/orderstream/orderstream/projections/analytics"
	"github.com/orderstream/orderstream/projections/search"
	"github.com/orderstream/orderstream/schemas"
)

// chosenMonth is the month whose net revenue the test reads off the screen.
const chosenMonth = "2011-11"

// TestDashboard loads the dashboard in headless Chromium against the real
// read models built from the real file, checks that the net revenue shown for
// a month (and in total) equals the API's answer, runs a search, opens an
// order, fails on any Content-Security-Policy violation or uncaught script
// error, and saves screenshots under $ORDERSTREAM_ARTIFACTS (default
// ./.local/artifacts at the module root).
func TestDashboard(t *testing.T) {
	chromium := browser(t)
	chAddr, searchURL := testenv.ClickHouseAddr(t), testenv.SearchURL(t)
	events := testfixture.RealEvents(t)

	queries, sq := buildReadModels(t, chAddr, searchURL, events)
	base := startAPI(t, api.Config{
		Auth: api.AuthNone, Listen: "127.0.0.1:0",
		Analytics: readmodel.Analytics{Q: queries}, Search: readmodel.Search{Q: sq},
		UI: web.Files(), RequestTimeout: 30 * time.Second,
	})

	// The API's answers, to compare the screen with.
	var month struct {
		Rows []struct {
			Key        string `json:"key"`
			NetRevenue string `json:"net_revenue"`
			Orders     int64  `json:"orders"`
		} `json:"rows"`
	}
	apiGet(t, base+"/api/v1/analytics/revenue?by=month", &month)
	var wantMonth, wantOrders string
	for _, r := range month.Rows {
		if r.Key == chosenMonth {
			wantMonth, wantOrders = r.NetRevenue, fmt.Sprint(r.Orders)
		}
	}
	if wantMonth == "" {
		t.Fatalf("API has no month %s: %+v", chosenMonth, month.Rows)
	}
	var summary struct {
		NetRevenue string `json:"net_revenue"`
	}
	apiGet(t, base+"/api/v1/analytics/summary", &summary)
	if summary.NetRevenue != testfixture.RealNetGBP {
		t.Fatalf("API net revenue %s; want %s", summary.NetRevenue, testfixture.RealNetGBP)
	}

	bctx, problems := newBrowser(t, chromium)
	artifacts := artifactDir(t)

	// Analytics page: every panel loaded, then the chosen month's row.
	monthRow := fmt.Sprintf(`#t-month tr[data-month="%s"]`, chosenMonth)
	monthCell := chromedp.CSS(monthRow + ` td[data-field="net_revenue"]`)
	do(t, bctx, "analytics page",
		chromedp.Navigate(base+"/#/analytics"),
		chromedp.WaitVisible(monthCell),
		waitPanels(),
	)
	shownMonth := get(t, bctx, chromedp.AttributeValue(monthCell, "data-value")).Value
	shownMonthText := get(t, bctx, chromedp.Text(monthCell))
	shownOrders := get(t, bctx, chromedp.Text(chromedp.CSS(monthRow+` td[data-field="orders"]`)))
	shownTotal := get(t, bctx, chromedp.AttributeValue(chromedp.CSS("#kpi-net_revenue"), "data-value")).Value
	shownTotalText := get(t, bctx, chromedp.Text(chromedp.CSS("#kpi-net_revenue")))
	save(t, artifacts, "dashboard-analytics.png", get(t, bctx, chromedp.FullScreenshot(100)))
	if shownMonth != wantMonth || plain(shownMonthText) != wantMonth {
		t.Errorf("net revenue shown for %s: %q (text %q); API says %s", chosenMonth, shownMonth, shownMonthText, wantMonth)
	}
	if plain(shownOrders) != wantOrders {
		t.Errorf("orders shown for %s: %q; API says %s", chosenMonth, shownOrders, wantOrders)
	}
	if shownTotal != testfixture.RealNetGBP || plain(shownTotalText) != testfixture.RealNetGBP {
		t.Errorf("total net revenue shown: %q (text %q); want %s", shownTotal, shownTotalText, testfixture.RealNetGBP)
	}

	// The date range and country filter: every panel follows it.
	var filtered struct {
		NetRevenue string `json:"net_revenue"`
	}
	apiGet(t, base+"/api/v1/analytics/summary?from=2011-01-01&to=2011-06-30&country=France", &filtered)
	do(t, bctx, "filter by range and country",
		chromedp.SetValue(chromedp.CSS("#f-from"), "2011-01-01"),
		chromedp.SetValue(chromedp.CSS("#f-to"), "2011-06-30"),
		chromedp.WaitReady(chromedp.CSS(`#f-country option[value="France"]`)),
		chromedp.SetValue(chromedp.CSS("#f-country"), "France"),
		chromedp.Click(chromedp.CSS("#f-apply")),
		// The unfiltered page had July; the filtered one must not.
		chromedp.WaitNotPresent(chromedp.CSS(`#t-month tr[data-month="2011-07"]`)),
		chromedp.WaitVisible(chromedp.CSS(`#p-month[data-state="ready"] tr[data-month="2011-06"]`)),
		waitPanels(),
	)
	if got := get(t, bctx, chromedp.AttributeValue(chromedp.CSS("#kpi-net_revenue"), "data-value")).Value; got != filtered.NetRevenue {
		t.Errorf("France 2011-01..06 net revenue shown %q; API says %s", got, filtered.NetRevenue)
	}
	save(t, artifacts, "dashboard-analytics-france.png", get(t, bctx, chromedp.FullScreenshot(100)))

	// Search, then open the first order.
	const text = "hanging heart"
	var found struct {
		Total int64 `json:"total"`
		Hits  []struct {
			ID          string `json:"id"`
			OrderNumber string `json:"order_number"`
		} `json:"hits"`
	}
	apiGet(t, base+"/api/v1/orders/search?q="+url.QueryEscape(text), &found)
	if found.Total == 0 || len(found.Hits) == 0 {
		t.Fatalf("API search %q found nothing", text)
	}
	var order struct {
		OrderNumber string `json:"order_number"`
		Total       string `json:"total"`
		Lines       []any  `json:"lines"`
	}
	apiGet(t, base+"/api/v1/orders/"+url.PathEscape(found.Hits[0].ID), &order)

	do(t, bctx, "search",
		chromedp.Navigate(base+"/#/search"),
		chromedp.WaitVisible(chromedp.CSS("#s-q")),
		chromedp.SendKeys(chromedp.CSS("#s-q"), text),
		chromedp.Click(chromedp.CSS("#s-go")),
		chromedp.WaitVisible(chromedp.CSS(`#s-results[data-state="ready"] #s-table tr.clickable`)),
	)
	shownCount := get(t, bctx, chromedp.Text(chromedp.CSS("#s-total")))
	firstRow := get(t, bctx, chromedp.AttributeValue(chromedp.CSS("#s-table tr.clickable"), "data-id")).Value
	save(t, artifacts, "dashboard-search.png", get(t, bctx, chromedp.FullScreenshot(100)))
	do(t, bctx, "open an order",
		chromedp.Click(chromedp.CSS("#s-table tr.clickable a")),
		chromedp.WaitVisible(chromedp.CSS(`#o-panel[data-state="ready"] #o-lines`)),
	)
	orderTitle := get(t, bctx, chromedp.Text(chromedp.CSS("#o-title")))
	orderTotal := get(t, bctx, chromedp.AttributeValue(chromedp.CSS("#o-total"), "data-value")).Value
	lineRows := get(t, bctx, chromedp.Nodes(chromedp.CSSAll("#o-lines tbody tr")))
	save(t, artifacts, "dashboard-order.png", get(t, bctx, chromedp.FullScreenshot(100)))

	if want := fmt.Sprint(found.Total); plain(strings.Fields(shownCount)[0]) != want {
		t.Errorf("search %q shows %q; API total %s", text, shownCount, want)
	}
	if firstRow != found.Hits[0].ID {
		t.Errorf("first result %s; API's first hit %s", firstRow, found.Hits[0].ID)
	}
	if orderTitle != "Order "+order.OrderNumber || orderTotal != order.Total || len(lineRows) != len(order.Lines) {
		t.Errorf("order page: %q total %s, %d lines; API: %s total %s, %d lines",
			orderTitle, orderTotal, len(lineRows), order.OrderNumber, order.Total, len(order.Lines))
	}

	for _, p := range problems() {
		t.Errorf("browser: %s", p)
	}
}

// waitPanels waits until every panel of the analytics page has loaded, plus
// the charts' entry animation (for the picture only).
func waitPanels() chromedp.Action[chromedp.Void] {
	var steps []chromedp.Action[chromedp.Void]
	for _, p := range []string{"p-kpis", "p-month", "p-day", "p-country", "p-products"} {
		steps = append(steps, chromedp.WaitVisible(chromedp.CSS(fmt.Sprintf(`#%s[data-state="ready"]`, p))))
	}
	return chromedp.Steps(append(steps, chromedp.Sleep(700*time.Millisecond))...)
}

// browser returns the Chromium executable, installed by
// deploy/local/browser.sh; missing: skip, or fail under CI=true.
func browser(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	msg := "chromium is not installed: run deploy/local/browser.sh (apt-get install -y chromium)"
	if testenv.InCI() {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}

// buildReadModels writes the real events into an analytics database and a
// search read model of the test's own (dropped at cleanup), through the
// projections' own sinks, concurrently.
func buildReadModels(t *testing.T, chAddr, searchURL string, events []schemas.Envelope) (*analytics.Queries, *search.Query) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	recs := make([]consumers.Record, len(events))
	for i, e := range events {
		recs[i] = consumers.Record{Topic: "orders", Offset: int64(i), Key: []byte(e.AggregateID), Event: e}
	}

	chCfg := analytics.Config{Addr: chAddr, Database: testenv.Name("e2e")}
	t.Cleanup(func() {
		conn, err := analytics.Open(chCfg)
		if err != nil {
			return
		}
		defer conn.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := conn.Exec(ctx, "DROP DATABASE IF EXISTS `"+chCfg.Database+"`"); err != nil {
			t.Logf("drop database %s: %v", chCfg.Database, err)
		}
	})
	eng, err := search.NewEngine(search.EngineConfig{Kind: search.EngineOpenSearch, URL: searchURL})
	if err != nil {
		t.Fatal(err)
	}
	sCfg := search.Config{Engine: eng, Prefix: testenv.Name("e2e")}
	admin, err := search.NewAdmin(sCfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := admin.DropAll(ctx); err != nil {
			t.Logf("drop search read model %s: %v", sCfg.Prefix, err)
		}
	})

	start := time.Now()
	var g errgroup.Group
	g.Go(func() error {
		sink, err := analytics.NewSink(chCfg)
		if err != nil {
			return err
		}
		defer sink.Close()
		return writeAll(ctx, sink, recs)
	})
	g.Go(func() error {
		if _, err := admin.Setup(ctx); err != nil {
			return fmt.Errorf("search setup: %w", err)
		}
		sink, err := search.NewSink(search.SinkConfig{Config: sCfg})
		if err != nil {
			return err
		}
		defer sink.Close()
		if err := writeAll(ctx, sink, recs); err != nil {
			return err
		}
		return admin.Refresh(ctx)
	})
	if err := g.Wait(); err != nil {
		t.Fatalf("build read models: %v", err)
	}
	t.Logf("read models built from %d events in %s", len(events), time.Since(start).Round(time.Millisecond))

	conn, err := analytics.Open(chCfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	q, err := search.NewQuery(sCfg)
	if err != nil {
		t.Fatal(err)
	}
	return analytics.New(conn, chCfg.Database), q
}

func writeAll(ctx context.Context, sink consumers.Sink, recs []consumers.Record) error {
	for i := 0; i < len(recs); i += consumers.DefaultBatchMaxRecords {
		end := min(i+consumers.DefaultBatchMaxRecords, len(recs))
		if err := sink.Write(ctx, recs[i:end]); err != nil {
			return fmt.Errorf("write records %d..%d: %w", i, end, err)
		}
	}
	return nil
}

// newBrowser starts headless Chromium with a fresh profile and returns its
// context and a function listing the console errors, uncaught exceptions and
// Content-Security-Policy violations seen so far.
func newBrowser(t *testing.T, exe string) (context.Context, func() []string) {
	t.Helper()
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(exe),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.WindowSize(1440, 1000),
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	bctx, cancelBrowser := chromedp.NewContext(actx)
	done := make(chan struct{})
	t.Cleanup(func() { cancelBrowser(); cancelAlloc(); <-done })

	// Start the browser (no deadline on this first call: it would bound the
	// browser's life), then subscribe to its console.
	if err := chromedp.Do(bctx); err != nil {
		t.Fatalf("start %s: %v", exe, err)
	}
	var mu sync.Mutex
	var problems []string
	messages := chromedp.Console(bctx)
	go func() {
		defer close(done)
		for m, err := range messages {
			if err != nil {
				return
			}
			if m.Type == chromedp.ConsoleError || m.IsException() || strings.Contains(m.Text, "Content Security Policy") {
				if strings.Contains(m.URL, "favicon.ico") {
					continue
				}
				mu.Lock()
				problems = append(problems, m.String()+" at "+m.URL)
				mu.Unlock()
			}
		}
	}()
	return bctx, func() []string { mu.Lock(); defer mu.Unlock(); return append([]string(nil), problems...) }
}

// do runs actions under a 90 s deadline.
func do(t *testing.T, ctx context.Context, what string, actions ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, 90*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			err = fmt.Errorf("%w (an element awaited never appeared)", err)
		}
		t.Fatalf("%s: %v", what, err)
	}
}

// get runs one action that returns a value, under a 30 s deadline.
func get[T any](t *testing.T, ctx context.Context, a chromedp.Action[T]) T {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, a)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func apiGet(t *testing.T, u string, v any) {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("GET %s: HTTP %d %s", u, resp.StatusCode, b)
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatalf("GET %s: %v", u, err)
	}
}

// plain undoes the dashboard's display grouping: "£1,161,817.380" →
// "1161817.380", "−£5.000" → "-5.000", "1,234" → "1234".
func plain(s string) string {
	s = strings.TrimSpace(s)
	s = strings.ReplaceAll(s, "−", "-")
	s = strings.ReplaceAll(s, "£", "")
	return strings.ReplaceAll(s, ",", "")
}

func artifactDir(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("ORDERSTREAM_ARTIFACTS")
	if dir == "" {
		dir = filepath.Join(testfixture.ModuleRoot(t), ".local", "artifacts")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

func save(t *testing.T, dir, name string, png []byte) {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s (%d bytes)", p, len(png))
}
