package analytics_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/orderstream/orderstream/internal/testfixture"
	"github.com/orderstream/orderstream/projections/analytics"
	"github.com/shopspring/decimal"
)

// TestGenerationsRebuildCutoverRollback walks a rebuild: generation 1
// serves; generation 2 is created (building) and the following sink starts
// writing new events to both; a rebuild sink fills generation 2 with the
// history; the cutover switches the views; a rollback switches back to the
// kept generation 1, which stayed current; drop removes generation 2.
func TestGenerationsRebuildCutoverRollback(t *testing.T) {
	all := testfixture.RealEvents(t)
	history, live := all[:3000], all[3000:4000]
	netAll, linesAll, _ := expectedOf(t, all[:4000])
	netHist, linesHist, _ := expectedOf(t, history)
	ctx := context.Background()
	cfg := testConfig(t)
	cfg.GenerationRefresh = 50 * time.Millisecond
	follow := newSink(t, cfg)
	writeAll(t, follow, history, 1000) // migrates: generation 1 serving
	q, st := newQueries(t, cfg)

	serving, err := st.Serving(ctx)
	if err != nil || serving != 1 {
		t.Fatalf("Serving() = %d, %v; want 1", serving, err)
	}
	if err := st.Cutover(ctx, 2); !errors.Is(err, analytics.ErrNoGeneration) {
		t.Fatalf("Cutover(2) before it exists: %v, want ErrNoGeneration", err)
	}
	next, err := st.NextGeneration(ctx)
	if err != nil || next != 2 {
		t.Fatalf("NextGeneration() = %d, %v; want 2", next, err)
	}
	if err := st.CreateGeneration(ctx, 2); err != nil {
		t.Fatal(err)
	}
	if err := st.CreateGeneration(ctx, 2); !errors.Is(err, analytics.ErrExists) {
		t.Fatalf("CreateGeneration(2) again: %v, want ErrExists", err)
	}
	time.Sleep(2 * cfg.GenerationRefresh) // let the following sink's registry cache expire (no condition to poll: it is a TTL)
	writeAll(t, follow, live, 500)        // goes to generations 1 and 2

	// The rebuild: the history only, into generation 2.
	rcfg := cfg
	rcfg.Generation = 2
	writeAll(t, newSink(t, rcfg), history, 1000)

	sum := func(qq *analytics.Queries) analytics.Totals {
		t.Helper()
		got, err := qq.Summary(ctx, analytics.Filter{})
		if err != nil {
			t.Fatal(err)
		}
		return got
	}
	check := func(what string, got analytics.Totals, net decimal.Decimal, lines int64) {
		t.Helper()
		if !got.NetRevenue.Equal(net) || got.Lines != lines {
			t.Errorf("%s: net %s lines %d, want %s %d", what, got.NetRevenue, got.Lines, net, lines)
		}
	}
	check("views before cutover (generation 1)", sum(q), netAll, linesAll)
	check("generation 2 before cutover", sum(q.OnGeneration(2)), netAll, linesAll)
	if netAll.Equal(netHist) || linesAll == linesHist {
		t.Fatal("test data: live events add nothing")
	}

	if err := st.Cutover(ctx, 2); err != nil {
		t.Fatal(err)
	}
	gens, err := st.Generations(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(gens) != 2 || gens[0].State != analytics.StateRetired || gens[1].State != analytics.StateServing || gens[1].CutoverAt.IsZero() {
		t.Fatalf("generations after cutover: %+v", gens)
	}
	check("views after cutover", sum(q), netAll, linesAll)
	assertViewsOn(t, cfg, 2)

	// Events after the cutover reach the kept generation 1 too.
	more := all[4000:4500]
	writeAll(t, follow, more, 500)
	net5, lines5, _ := expectedOf(t, all[:4500])
	check("generation 1 after cutover (kept current)", sum(q.OnGeneration(1)), net5, lines5)

	back, err := st.Rollback(ctx)
	if err != nil || back != 1 {
		t.Fatalf("Rollback() = %d, %v; want 1", back, err)
	}
	assertViewsOn(t, cfg, 1)
	check("views after rollback", sum(q), net5, lines5)

	if err := st.DropGeneration(ctx, 1); !errors.Is(err, analytics.ErrServing) {
		t.Fatalf("DropGeneration(serving 1): %v, want ErrServing", err)
	}
	if err := st.DropGeneration(ctx, 2); err != nil {
		t.Fatal(err)
	}
	writeAll(t, follow, all[4500:4600], 100) // the following sink drops generation 2 from its targets
	if err := st.Migrate(ctx); err != nil {  // idempotent, leaves the dropped one dropped
		t.Fatal(err)
	}
	gens, err = st.Generations(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(gens) != 2 || gens[0].State != analytics.StateServing || gens[1].State != analytics.StateDropped {
		t.Fatalf("generations after drop: %+v", gens)
	}
	if err := st.CreateGeneration(ctx, 2); !errors.Is(err, analytics.ErrExists) {
		t.Fatalf("CreateGeneration(dropped 2): %v, want ErrExists", err)
	}
}

// assertViewsOn checks every stable view reads generation n.
func assertViewsOn(t *testing.T, cfg analytics.Config, n int) {
	t.Helper()
	conn, err := analytics.Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	for _, v := range []string{"order_lines", "orders", "order_status"} {
		var create string
		if err := conn.QueryRow(context.Background(), "SHOW CREATE TABLE `"+cfg.Database+"`."+v).Scan(&create); err != nil {
			t.Fatal(err)
		}
		want := v + "_g" + string(rune('0'+n)) + " "
		if !contains(create, want) {
			t.Errorf("view %s does not read %q: %s", v, want, create)
		}
	}
}

// TestCutoverRefusesGenerationOfEarlierRelease: a generation whose
// order_status table an earlier release created (keyed by order alone, so
// merges keep only each order's last event) is never served — the status
// fold would read it without error and answer wrong — and the serving
// generation stays.
func TestCutoverRefusesGenerationOfEarlierRelease(t *testing.T) {
	ctx := context.Background()
	cfg := testConfig(t)
	_, st := newQueries(t, cfg)
	if err := st.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	if err := st.CreateGeneration(ctx, 2); err != nil {
		t.Fatal(err)
	}
	conn, err := analytics.Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	old := "`" + cfg.Database + "`.order_status_g2"
	for _, sql := range []string{
		"DROP TABLE " + old,
		"CREATE TABLE " + old + ` (order_id String, status String, event_type String, amount Decimal(18, 3),
			updated_at DateTime('UTC'), version UInt64) ENGINE = ReplacingMergeTree(version) ORDER BY order_id`,
	} {
		if err := conn.Exec(ctx, sql); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}
	if err := st.Cutover(ctx, 2); !errors.Is(err, analytics.ErrOldGeneration) {
		t.Fatalf("Cutover(2) to a generation of an earlier release: %v, want ErrOldGeneration", err)
	}
	if serving, err := st.Serving(ctx); err != nil || serving != 1 {
		t.Fatalf("Serving() after the refused cutover = %d, %v; want 1", serving, err)
	}
	if err := st.Cutover(ctx, 1); err != nil {
		t.Fatalf("Cutover(1), a generation of this release: %v", err)
	}
}
