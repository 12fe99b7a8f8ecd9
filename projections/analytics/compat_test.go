package analytics_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/orderstream/orderstream/internal/chdb"
	"github.com/orderstream/orderstream/internal/testenv"
	"github.com/orderstream/orderstream/internal/testfixture"
	"github.com/orderstream/orderstream/projections/analytics"
	"github.com/orderstream/orderstream/schemas"
	"github.com/shopspring/decimal"
)

// target is one ClickHouse the compatibility suite runs the read model's
// code on: the shared 18.16 server, chDB (26.9), or a current server.
type target struct {
	name string
	cfg  analytics.Config
	conn driver.Conn // for Store and Queries
	// sink returns a Sink over this target for cfg (Database set).
	sink func(t *testing.T, cfg analytics.Config) *analytics.Sink
}

// serverTarget is a real server at addr, through clickhouse-go's native
// protocol, in a database of the test's own.
func serverTarget(t *testing.T, name, addr string) target {
	t.Helper()
	cfg := databaseOn(t, addr)
	conn, err := analytics.Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	v, err := conn.ServerVersion()
	if err != nil {
		t.Fatalf("%s at %s: %v", name, addr, err)
	}
	name = fmt.Sprintf("ClickHouse %d.%d (%s)", v.Version.Major, v.Version.Minor, name)
	return target{name: name, cfg: cfg, conn: conn, sink: func(t *testing.T, cfg analytics.Config) *analytics.Sink { return newSink(t, cfg) }}
}

// chdbTarget is ClickHouse embedded by chDB; it fails under CI=true when
// python3 or chdb-core is missing (deploy/local/chdb.sh installs it).
func chdbTarget(t *testing.T) target {
	t.Helper()
	conn := chdb.StartForTest(t)
	v, err := conn.ServerVersion()
	if err != nil {
		t.Fatal(err)
	}
	cfg := analytics.Config{Addr: "chdb", Database: testenv.Name("a")}
	return target{name: v.DisplayName, cfg: cfg, conn: conn, sink: func(t *testing.T, cfg analytics.Config) *analytics.Sink {
		s, err := analytics.NewSinkOn(keepOpen{conn}, cfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = s.Close() })
		return s
	}}
}

// keepOpen shares one connection among sinks: their Close leaves it open.
type keepOpen struct{ driver.Conn }

func (keepOpen) Close() error { return nil }

// currentTargets returns every current release the suite can reach: chDB
// always, and a real current server where one exists
// (ORDERSTREAM_CLICKHOUSE_CURRENT_ADDR, or Docker's clickhouse-server:25.8).
func currentTargets(t *testing.T) []target {
	t.Helper()
	out := []target{chdbTarget(t)}
	if addr := testenv.CurrentClickHouseAddr(t); addr != "" {
		out = append(out, serverTarget(t, "current server "+addr, addr))
	}
	return out
}

// answers is the transcript of one scenario run: every answer the read
// model's code gave, in order, as canonical JSON.
type answers struct {
	keys   []string
	values map[string]string
	cells  int
}

func (a *answers) add(t *testing.T, key string, v any, cells int) {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatalf("%s: %v", key, err)
	}
	if a.values == nil {
		a.values = map[string]string{}
	}
	if _, dup := a.values[key]; dup {
		t.Fatalf("answer %q recorded twice", key)
	}
	a.keys = append(a.keys, key)
	a.values[key] = string(b)
	a.cells += cells
}

// totalsCells is the number of values of one Totals.
const totalsCells = 11

// compatFilters are the dashboard filters of the suite: whole range, a
// month, both 2011 DST days, ranges open at one end, a country, a country
// within a month, a country that needs escaping, a range without data.
func compatFilters(t *testing.T) map[string]analytics.Filter {
	t.Helper()
	d := func(s string) time.Time {
		v, err := time.Parse(time.DateOnly, s)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	return map[string]analytics.Filter{
		"all":                     {},
		"2011-03":                 {From: d("2011-03-01"), To: d("2011-03-31")},
		"dst start 2011-03-27":    {From: d("2011-03-27"), To: d("2011-03-27")},
		"dst end 2011-10-30":      {From: d("2011-10-30"), To: d("2011-10-30")},
		"around dst end":          {From: d("2011-10-29"), To: d("2011-10-31")},
		"first day":               {From: d("2010-12-01"), To: d("2010-12-01")},
		"from 2011-11-01":         {From: d("2011-11-01")},
		"to 2010-12-31":           {To: d("2010-12-31")},
		"United Kingdom":          {Country: "United Kingdom"},
		"EIRE":                    {Country: "EIRE"},
		"Channel Islands":         {Country: "Channel Islands"},
		"France 2011-05":          {From: d("2011-05-01"), To: d("2011-05-31"), Country: "France"},
		"escaping":                {Country: `Côte d'Ivoire \ "x"`},
		"2012-01 (no data)":       {From: d("2012-01-01"), To: d("2012-01-31")},
		"Germany from 2011-06":    {From: d("2011-06-01"), Country: "Germany"},
		"United Kingdom 2011-Q4":  {From: d("2011-10-01"), To: d("2011-12-31"), Country: "United Kingdom"},
		"web":                     {Channel: "web"},
		"unknown channel 2011-03": {From: d("2011-03-01"), To: d("2011-03-31"), Channel: "unknown"},
		"phone 2011-05-10..06-20": {From: d("2011-05-10"), To: d("2011-06-20"), Channel: "phone"},
		"store United Kingdom":    {Country: "United Kingdom", Channel: "store"},
	}
}

// dashboard records every dashboard answer of q for every filter.
func dashboard(t *testing.T, a *answers, step string, q *analytics.Queries, filters map[string]analytics.Filter) {
	t.Helper()
	ctx := context.Background()
	for name, f := range filters {
		k := step + " / " + name
		sum, err := q.Summary(ctx, f)
		if err != nil {
			t.Fatalf("%s: Summary: %v", k, err)
		}
		a.add(t, k+" / summary", sum, totalsCells)
		for _, by := range []analytics.Dimension{analytics.ByDay, analytics.ByMonth, analytics.ByCountry, analytics.ByChannel} {
			g, err := q.Breakdown(ctx, f, by)
			if err != nil {
				t.Fatalf("%s: Breakdown(%s): %v", k, by, err)
			}
			a.add(t, k+" / by "+string(by), g, len(g)*(totalsCells+1))
		}
		for _, rank := range []analytics.Rank{analytics.RankRevenue, analytics.RankQuantity} {
			limit := 25
			if name == "all" {
				limit = 10000 // every product
			}
			p, err := q.TopProducts(ctx, f, rank, limit)
			if err != nil {
				t.Fatalf("%s: TopProducts(%s): %v", k, rank, err)
			}
			a.add(t, fmt.Sprintf("%s / top %d by %s", k, limit, rank), p, len(p)*5)
		}
		if f.Country != "" {
			has, err := q.HasCountry(ctx, f.Country)
			if err != nil {
				t.Fatalf("%s: HasCountry: %v", k, err)
			}
			a.add(t, k+" / has country", has, 1)
		}
	}
}

// registry records the generations' numbers and states (times differ
// between runs by nature).
func registry(t *testing.T, a *answers, step string, st *analytics.Store) {
	t.Helper()
	gens, err := st.Generations(context.Background())
	if err != nil {
		t.Fatalf("%s: Generations: %v", step, err)
	}
	var states []string
	for _, g := range gens {
		states = append(states, fmt.Sprintf("%d %s", g.Number, g.State))
	}
	a.add(t, step+" / generations", states, len(states))
}

// ordersView records the orders view's documents per kind and status (the
// join of the generation's orders and statuses) and the status view's rows.
func ordersView(t *testing.T, a *answers, step string, tg target) {
	t.Helper()
	ctx := context.Background()
	rows, err := tg.conn.Query(ctx, "SELECT kind, status, count(), sum(total), max(version) FROM `"+tg.cfg.Database+"`.orders GROUP BY kind, status ORDER BY kind, status")
	if err != nil {
		t.Fatalf("%s: orders view: %v", step, err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var kind, status string
		var n, version uint64
		var total decimal.Decimal
		if err := rows.Scan(&kind, &status, &n, &total, &version); err != nil {
			t.Fatalf("%s: orders view: %v", step, err)
		}
		out = append(out, fmt.Sprintf("%s %s %d %s v%d", kind, status, n, total.StringFixed(3), version))
	}
	var statuses uint64
	if err := tg.conn.QueryRow(ctx, "SELECT count() FROM `"+tg.cfg.Database+"`.order_status").Scan(&statuses); err != nil {
		t.Fatalf("%s: order_status view: %v", step, err)
	}
	a.add(t, step+" / orders view", out, len(out)*5)
	a.add(t, step+" / order_status view rows", statuses, 1)
}

// redelivered returns every 20th event (5 %), to be written a second time.
func redelivered(events []schemas.Envelope) []schemas.Envelope {
	var out []schemas.Envelope
	for i := 7; i < len(events); i += 20 {
		out = append(out, events[i])
	}
	return out
}

// scenario runs the read model's whole life on tg and returns every answer:
// migrate (twice), a following sink fills generation 1, generation 2 is
// created and rebuilt from the history while the live half reaches both, 5 %
// of the events are redelivered, cutover to 2, rollback to 1, cutover to 2
// again, drop 1, migrate again; the dashboard is read on the views and on
// each generation between the steps.
func scenario(t *testing.T, tg target, events []schemas.Envelope) *answers {
	t.Helper()
	ctx := context.Background()
	a := &answers{}
	st, err := analytics.NewStore(tg.conn, tg.cfg.Database)
	if err != nil {
		t.Fatal(err)
	}
	q := analytics.New(tg.conn, tg.cfg.Database)
	filters := compatFilters(t)
	light := map[string]analytics.Filter{"all": {}} // between the steps; the full set once, after the cutover
	step := func(what string, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %s: %v", tg.name, what, err)
		}
	}
	step("migrate", st.Migrate(ctx))
	step("migrate again", st.Migrate(ctx))
	registry(t, a, "migrated", st)

	half := len(events) / 2
	cfg := tg.cfg
	cfg.GenerationRefresh = time.Nanosecond // the following sink sees every registry change at once
	follow := tg.sink(t, cfg)
	writeAll(t, follow, events[:half], 5000)
	dashboard(t, a, "generation 1, first half", q, light)

	step("create generation 2", st.CreateGeneration(ctx, 2))
	writeAll(t, follow, events[half:], 5000) // to generations 1 and 2
	rcfg := tg.cfg
	rcfg.Generation = 2
	writeAll(t, tg.sink(t, rcfg), events[:half], 5000) // the rebuild of the history
	writeAll(t, follow, redelivered(events), 1000)
	registry(t, a, "built", st)
	dashboard(t, a, "on generation 2 before cutover", q.OnGeneration(2), light)

	step("cutover to 2", st.Cutover(ctx, 2))
	registry(t, a, "cut over", st)
	dashboard(t, a, "views after cutover", q, filters)
	ordersView(t, a, "views after cutover", tg)

	back, err := st.Rollback(ctx)
	step("rollback", err)
	a.add(t, "rolled back to", back, 1)
	registry(t, a, "rolled back", st)
	dashboard(t, a, "views after rollback", q, light)
	ordersView(t, a, "views after rollback", tg)

	step("cutover to 2 again", st.Cutover(ctx, 2))
	step("drop generation 1", st.DropGeneration(ctx, 1))
	writeAll(t, follow, events[:1000], 1000) // the following sink stops writing to 1
	step("migrate after drop", st.Migrate(ctx))
	registry(t, a, "dropped 1", st)
	dashboard(t, a, "views at the end", q, light)
	return a
}

// compatEvery keeps one document in compatEvery for the suite (and every
// adjustment): the whole file through both engines twice over takes
// minutes on a shared two-core machine; a tenth still spans every day,
// month and country of the file.
const compatEvery = 10

// compatEvents returns the events of every compatEvery-th document of the
// real file (in file order, each document's events together) and of every
// adjustment document.
func compatEvents(all []schemas.Envelope) []schemas.Envelope {
	var out []schemas.Envelope
	doc, keep := -1, false
	for i, e := range all {
		if i == 0 || e.AggregateID != all[i-1].AggregateID {
			doc++
			keep = doc%compatEvery == 0 || bytes.Contains(e.Payload, []byte(`"kind":"adjustment"`))
		}
		if keep {
			out = append(out, e)
		}
	}
	return out
}

// TestCompatibilityCurrentRelease runs the read model's own code — Store
// (migrations, generation create, cutover, rollback, drop), Sink (inserts of
// the real file's events, a deterministic tenth of its documents, 5 % of the
// events redelivered) and every dashboard query — on ClickHouse 18.16 (the
// shared server) and on each current release within reach (chDB 26.9
// always; a current server where one exists), side by side, and requires
// every answer of a current release to equal 18.16's, cell by cell. (With
// Docker and no shared server, the reference is the 25.8 container.)
func TestCompatibilityCurrentRelease(t *testing.T) {
	events := withChannels(t, compatEvents(testfixture.RealEvents(t)))
	targets := append([]target{serverTarget(t, "shared server", testenv.ClickHouseAddr(t))}, currentTargets(t)...)
	got := make([]*answers, len(targets))
	t.Run("run", func(t *testing.T) {
		for i, tg := range targets {
			t.Run(tg.name, func(t *testing.T) {
				t.Parallel()
				start := time.Now()
				got[i] = scenario(t, tg, events)
				t.Logf("%d events (%d redelivered): %d answers, %d cells in %s", len(events), len(redelivered(events)),
					len(got[i].keys), got[i].cells, time.Since(start).Round(time.Millisecond))
			})
		}
	})
	if t.Failed() {
		return
	}
	want := got[0]
	if want.cells < 20000 {
		t.Fatalf("%s gave %d cells: the suite compares too little", targets[0].name, want.cells)
	}
	for i, tg := range targets[1:] {
		a := got[i+1]
		if len(a.keys) != len(want.keys) {
			t.Errorf("%s: %d answers, %s gave %d", tg.name, len(a.keys), targets[0].name, len(want.keys))
		}
		diffs := 0
		for _, k := range want.keys {
			if g, w := a.values[k], want.values[k]; g != w {
				diffs++
				t.Errorf("%s:\n  %s: %.400s\n  %s: %.400s", k, tg.name, g, targets[0].name, w)
			}
		}
		t.Logf("%s: %d of %d answers (%d cells) equal to %s's", tg.name, len(want.keys)-diffs, len(want.keys), want.cells, targets[0].name)
	}
}

// TestCurrentReleaseOrdinaryDatabase runs migrate, cutover, rollback and
// drop on a current release (chDB) in an Ordinary database, the engine a
// database created by 18.16 keeps after a server upgrade: the same SQL
// works there (CREATE OR REPLACE VIEW included).
func TestCurrentReleaseOrdinaryDatabase(t *testing.T) {
	ctx := context.Background()
	tg := chdbTarget(t)
	for _, sql := range []string{"SET allow_deprecated_database_ordinary = 1", "CREATE DATABASE `" + tg.cfg.Database + "` ENGINE = Ordinary"} {
		if err := tg.conn.Exec(ctx, sql); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}
	events := testfixture.RealEvents(t)[:2000]
	st, err := analytics.NewStore(tg.conn, tg.cfg.Database)
	if err != nil {
		t.Fatal(err)
	}
	writeAll(t, tg.sink(t, tg.cfg), events, 1000) // migrates: generation 1
	if err := st.CreateGeneration(ctx, 2); err != nil {
		t.Fatal(err)
	}
	rcfg := tg.cfg
	rcfg.Generation = 2
	writeAll(t, tg.sink(t, rcfg), events[:1000], 1000) // generation 2 holds less
	q := analytics.New(tg.conn, tg.cfg.Database)
	lines := func() int64 {
		t.Helper()
		sum, err := q.Summary(ctx, analytics.Filter{})
		if err != nil {
			t.Fatal(err)
		}
		return sum.Lines
	}
	on1 := lines()
	if err := st.Cutover(ctx, 2); err != nil {
		t.Fatal(err)
	}
	if on2 := lines(); on2 == 0 || on2 >= on1 {
		t.Fatalf("lines after cutover to generation 2: %d, want fewer than generation 1's %d", on2, on1)
	}
	if _, err := st.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	if got := lines(); got != on1 {
		t.Fatalf("lines after rollback: %d, want %d", got, on1)
	}
	if err := st.DropGeneration(ctx, 2); err != nil {
		t.Fatal(err)
	}
	var engine string
	if err := tg.conn.QueryRow(ctx, "SELECT engine FROM system.databases WHERE name = ?", tg.cfg.Database).Scan(&engine); err != nil || engine != "Ordinary" {
		t.Fatalf("database engine = %q, %v; want Ordinary", engine, err)
	}
}

// TestCurrentReleaseRealFileExact writes the whole real file through the
// sink into a current release (chDB), 5 % of the events a second time, and
// checks the dashboard against the independent computation from the CSV —
// the yardstick TestRealFileExactAndIdempotent holds 18.16 to.
func TestCurrentReleaseRealFileExact(t *testing.T) {
	events := testfixture.RealEvents(t)
	exp := testfixture.ExpectedFromCSV(t)
	tg := chdbTarget(t)
	s := tg.sink(t, tg.cfg)
	start := time.Now()
	writeAll(t, s, events, 10000)
	writeAll(t, s, redelivered(events), 10000)
	t.Logf("%s: wrote %d events and %d again in %s", tg.name, len(events), len(redelivered(events)), time.Since(start).Round(time.Millisecond))
	q := analytics.New(tg.conn, tg.cfg.Database)
	checkAll(t, q, exp)
	checkFilters(t, q, exp)
}
