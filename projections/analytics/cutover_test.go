package analytics_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/orderstream/orderstream/internal/testenv"
	"github.com/orderstream/orderstream/projections/analytics"
	"github.com/shopspring/decimal"
)

// markGeneration writes g+1 orders into generation g's tables, each with
// one line and one status, marked with the generation: country "g<g>" on
// lines and orders, event type "g<g>" and status "s<g>" on statuses. A
// reader that mixes generations sees two marks, or counts of one and marks
// of the other.
func markGeneration(t *testing.T, tg target, g int) {
	t.Helper()
	ctx := context.Background()
	db := "`" + tg.cfg.Database + "`."
	at := time.Date(2011, 3, 27, 12, 0, 0, 0, time.UTC)
	mark := fmt.Sprintf("g%d", g)
	insert := func(table, columns string, row func(i int) []any) {
		t.Helper()
		b, err := tg.conn.PrepareBatch(ctx, fmt.Sprintf("INSERT INTO %s%s_g%d %s", db, table, g, columns))
		if err != nil {
			t.Fatal(err)
		}
		for i := range g + 1 {
			if err := b.Append(row(i)...); err != nil {
				t.Fatal(err)
			}
		}
		if err := b.Send(); err != nil {
			t.Fatal(err)
		}
	}
	one := decimal.RequireFromString("1.000")
	id := func(i int) string { return fmt.Sprintf("%s-%d", mark, i) }
	insert("order_lines", "(order_id, line_no, kind, country, quantity, unit_price, amount, placed_at, version)", func(i int) []any {
		return []any{id(i), uint32(1), "sale", mark, int64(1), one, one, at, uint64(1)}
	})
	insert("orders", "(order_id, kind, country, total, line_count, placed_at, version)", func(i int) []any {
		return []any{id(i), "sale", mark, one, uint32(1), at, uint64(1)}
	})
	insert("order_status", "(order_id, status, event_type, amount, updated_at, version)", func(i int) []any {
		return []any{id(i), "s" + mark[1:], mark, one, at, uint64(2)}
	})
}

// viewReads are the view references of one statement, each reduced to
// "count|min mark|max mark" (orders adds its joined statuses).
var viewReads = []struct{ name, expr string }{
	{"order_lines", "concat(toString(count()), '|', min(country), '|', max(country)) FROM %sorder_lines"},
	{"orders", "concat(toString(count()), '|', min(country), '|', max(country), '|', min(status), '|', max(status)) FROM %sorders"},
	{"order_status", "concat(toString(count()), '|', min(event_type), '|', max(event_type)) FROM %sorder_status"},
	{"order_lines again", "concat(toString(count()), '|', min(country), '|', max(country)) FROM %sorder_lines"},
}

// viewGeneration returns the generation reference i of viewReads shows as
// got, 0 when got is not one whole generation.
func viewGeneration(i int, got string) int {
	for g := 1; g <= 2; g++ {
		want := fmt.Sprintf("%d|g%d|g%d", g+1, g, g)
		if viewReads[i].name == "orders" {
			want += fmt.Sprintf("|s%d|s%d", g, g)
		}
		if got == want {
			return g
		}
	}
	return 0
}

// TestCutoverUnderConcurrentReads reads the stable views continuously
// from several goroutines — one statement referencing every view (one of
// them twice), and the dashboard's Summary — while cutovers switch them
// back and forth between two generations holding different data, on the
// shared 18.16 server and on a current server where one is within reach.
// No read may fail and every view reference must read one whole generation.
// Statements whose references read different generations are counted and
// logged: they happen on 18.16 too (see ARCHITECTURE.md, cutover).
func TestCutoverUnderConcurrentReads(t *testing.T) {
	targets := []target{serverTarget(t, "shared server", testenv.ClickHouseAddr(t))}
	if addr := testenv.CurrentClickHouseAddr(t); addr != "" {
		targets = append(targets, serverTarget(t, "current server "+addr, addr))
	}
	for _, tg := range targets {
		t.Run(tg.name, func(t *testing.T) { cutoverUnderReads(t, tg) })
	}
}

// twoGenerations migrates tg's database (generation 1 serving) and creates
// generation 2 (building).
func twoGenerations(t *testing.T, tg target) *analytics.Store {
	t.Helper()
	ctx := context.Background()
	st, err := analytics.NewStore(tg.conn, tg.cfg.Database, analytics.WithCluster(tg.cfg.Cluster))
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	if err := st.CreateGeneration(ctx, 2); err != nil {
		t.Fatal(err)
	}
	return st
}

func cutoverUnderReads(t *testing.T, tg target) {
	ctx := context.Background()
	st := twoGenerations(t, tg)
	markGeneration(t, tg, 1)
	markGeneration(t, tg, 2)
	scope, err := st.CutoverScope()
	if err != nil {
		t.Fatal(err)
	}
	db := "`" + tg.cfg.Database + "`."
	var refs []string
	for _, v := range viewReads {
		refs = append(refs, "(SELECT "+fmt.Sprintf(v.expr, db)+")")
	}
	all := "SELECT " + strings.Join(refs, ", ")
	q := analytics.New(tg.conn, tg.cfg.Database)

	const readers, minCutovers, minReads = 3, 20, 200
	var (
		mu       sync.Mutex
		reads    int
		seen     = map[int]int{} // generation → statements that read it in every reference
		combined int             // statements whose references read different generations
		broken   []string        // a reference that read no whole generation
		errs     []error
		stop     = make(chan struct{})
		wg       sync.WaitGroup
	)
	report := func(gens []int, what string, err error) {
		mu.Lock()
		defer mu.Unlock()
		reads++
		if err != nil {
			errs = append(errs, err)
			return
		}
		for _, g := range gens {
			if g == 0 {
				broken = append(broken, what)
				return
			}
		}
		if slices.Min(gens) != slices.Max(gens) {
			combined++
			return
		}
		seen[gens[0]]++
	}
	for r := range readers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				if r%2 == 0 {
					got := make([]string, len(viewReads))
					dest := make([]any, len(got))
					for i := range got {
						dest[i] = &got[i]
					}
					err := tg.conn.QueryRow(ctx, all).Scan(dest...)
					gens := make([]int, len(got))
					for i, v := range got {
						gens[i] = viewGeneration(i, v)
					}
					report(gens, fmt.Sprint(got), err)
					continue
				}
				sum, err := q.Summary(ctx, analytics.Filter{})
				g := int(sum.Lines) - 1
				if g < 1 || g > 2 || sum.Orders != int64(g+1) {
					g = 0
				}
				report([]int{g}, fmt.Sprintf("summary %+v", sum), err)
			}
		}()
	}
	deadline := time.Now().Add(2 * time.Minute)
	cutovers := 0
	for {
		mu.Lock()
		n := reads
		mu.Unlock()
		if cutovers >= minCutovers && n >= minReads {
			break
		}
		if time.Now().After(deadline) {
			close(stop)
			wg.Wait()
			t.Fatalf("after 2 min: %d cutovers, %d reads; want %d and %d", cutovers, n, minCutovers, minReads)
		}
		if err := st.Cutover(ctx, uint32(2-cutovers%2)); err != nil {
			close(stop)
			wg.Wait()
			t.Fatalf("cutover %d: %v", cutovers+1, err)
		}
		cutovers++
	}
	close(stop)
	wg.Wait()
	t.Logf("%s (cutover %s): %d cutovers, %d reads: generation 1 whole %d times, generation 2 %d times; "+
		"%d statements combined the generations in different references; %d broken references, %d errors",
		tg.name, scope, cutovers, reads, seen[1], seen[2], combined, len(broken), len(errs))
	for _, err := range errs[:min(len(errs), 5)] {
		t.Errorf("read failed during cutovers: %v", err)
	}
	for _, b := range broken[:min(len(broken), 5)] {
		t.Errorf("a view reference read no whole generation: %s", b)
	}
	if seen[1] == 0 || seen[2] == 0 {
		t.Errorf("readers saw generation 1 %d times and 2 %d times: the cutovers did not happen under reads", seen[1], seen[2])
	}
}

// TestMigrateUpgradesRegistryOfOldInstall takes a database as a build
// before the registry's rename left it on 18.16 — projection_generations
// with its column `projection`, schema_migrations up to database migration
// 1, generation 2 serving and 1 retired — and checks that Migrate moves
// every generation to read_model_generations unchanged, drops the old
// table, and that cutover and rollback work on the result.
func TestMigrateUpgradesRegistryOfOldInstall(t *testing.T) {
	ctx := context.Background()
	tg := serverTarget(t, "shared server", testenv.ClickHouseAddr(t))
	st := twoGenerations(t, tg)
	if err := st.Cutover(ctx, 2); err != nil {
		t.Fatal(err)
	}
	before, err := st.Generations(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// Back to the old shape: the registry as 0001 created it before (column
	// unquoted, as older builds wrote it), with the same rows, and no record
	// of database migrations 2 and 3.
	db := "`" + tg.cfg.Database + "`."
	for _, sql := range []string{
		`CREATE TABLE ` + db + `projection_generations (
			projection String, generation UInt32, state String, created_at DateTime('UTC'),
			cutover_at DateTime('UTC'), retired_at DateTime('UTC'), version UInt64
		) ENGINE = ReplacingMergeTree(version) ORDER BY (projection, generation)`,
		`INSERT INTO ` + db + `projection_generations SELECT read_model, generation, state, created_at, cutover_at, retired_at, version FROM ` + db + `read_model_generations`,
		`DROP TABLE ` + db + `read_model_generations`,
		`RENAME TABLE ` + db + `schema_migrations TO ` + db + `schema_migrations_all`,
		`CREATE TABLE ` + db + `schema_migrations AS ` + db + `schema_migrations_all`,
		`INSERT INTO ` + db + `schema_migrations SELECT * FROM ` + db + `schema_migrations_all WHERE NOT (scope = 'database' AND version > 1)`,
		`DROP TABLE ` + db + `schema_migrations_all`,
	} {
		if err := tg.conn.Exec(ctx, sql); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}

	st, err = analytics.NewStore(tg.conn, tg.cfg.Database) // a new process of the new build
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Migrate(ctx); err != nil {
		t.Fatalf("Migrate of an old install: %v", err)
	}
	after, err := st.Generations(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(after) != fmt.Sprint(before) || len(after) != 2 {
		t.Errorf("generations after the upgrade:\n  %+v\nbefore:\n  %+v", after, before)
	}
	var old uint8
	if err := tg.conn.QueryRow(ctx, "EXISTS TABLE "+db+"projection_generations").Scan(&old); err != nil || old != 0 {
		t.Errorf("projection_generations after the upgrade: exists=%d, %v; want dropped", old, err)
	}
	back, err := st.Rollback(ctx)
	if err != nil || back != 1 {
		t.Fatalf("Rollback after the upgrade = %d, %v; want 1", back, err)
	}
	assertViewsOn(t, tg.cfg, 1)
	if err := st.Cutover(ctx, 2); err != nil {
		t.Fatal(err)
	}
	assertViewsOn(t, tg.cfg, 2)
}
