package analytics

import (
	"strings"
	"testing"
	"time"
)

// TestRollupInsertIsTheMigrations: the Sink's recomputation of the
// top-products rollup is the statement that fills it in migration
// generation/0002, with a condition.
func TestRollupInsertIsTheMigrations(t *testing.T) {
	ms, err := loadMigrations("generation")
	if err != nil {
		t.Fatal(err)
	}
	var insert string
	for _, m := range ms {
		if m.version != 2 {
			continue
		}
		for _, st := range statements((&Store{db: "db"}).expand(m.sql, 4)) {
			if strings.HasPrefix(st, "INSERT ") {
				insert = st
			}
		}
	}
	want := rollupInsert("`db`.order_lines_g4", "`db`.product_months_g4", "")
	if strings.Join(strings.Fields(insert), " ") != strings.Join(strings.Fields(want), " ") {
		t.Errorf("migration 0002 fills the rollup with\n%s\nthe Sink with\n%s", insert, want)
	}
	withWhere := rollupInsert("l", "r", "x = 1")
	if !strings.Contains(withWhere, "FROM l FINAL\nWHERE x = 1\nGROUP BY pm, c, sc") {
		t.Errorf("condition not in the recomputation:\n%s", withWhere)
	}
}

func TestPlanTopProducts(t *testing.T) {
	t.Parallel()
	d := func(s string) time.Time {
		v, err := time.Parse(time.DateOnly, s)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	tests := []struct {
		name string
		give Filter
		want string // rollup condition | line ranges
	}{
		{"everything: the rollup only", Filter{}, "all|"},
		{"a whole month", Filter{From: d("2011-11-01"), To: d("2011-11-30")},
			"placed_month >= toDate('2011-11-01') AND placed_month <= toDate('2011-11-01')|"},
		{"whole months over a year end", Filter{From: d("2010-12-01"), To: d("2011-02-28")},
			"placed_month >= toDate('2010-12-01') AND placed_month <= toDate('2011-02-01')|"},
		{"within one month: lines only", Filter{From: d("2011-11-05"), To: d("2011-11-20")}, "none|2011-11-05..2011-11-20"},
		{"one day", Filter{From: d("2011-03-27"), To: d("2011-03-27")}, "none|2011-03-27..2011-03-27"},
		{"partial months at both ends", Filter{From: d("2011-01-15"), To: d("2011-04-10")},
			"placed_month >= toDate('2011-02-01') AND placed_month <= toDate('2011-03-01')|2011-01-15..2011-01-31 2011-04-01..2011-04-10"},
		{"two partial neighbour months", Filter{From: d("2011-01-15"), To: d("2011-02-10")}, "none|2011-01-15..2011-02-10"},
		{"open start, partial end", Filter{To: d("2011-02-10")}, "placed_month <= toDate('2011-01-01')|2011-02-01..2011-02-10"},
		{"partial start in a leap February, open end", Filter{From: d("2012-02-29")}, "placed_month >= toDate('2012-03-01')|2012-02-29..2012-02-29"},
		{"open start, month's last day", Filter{To: d("2011-02-28")}, "placed_month <= toDate('2011-02-01')|"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := planTopProducts(tc.give)
			roll := "none"
			if p.rollup {
				if roll = p.rollupCondition(); roll == "" {
					roll = "all"
				}
			}
			var ranges []string
			for _, r := range p.lines {
				ranges = append(ranges, day(r.from)+".."+day(r.to))
			}
			if got := roll + "|" + strings.Join(ranges, " "); got != tc.want {
				t.Errorf("plan = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestLinesMonths(t *testing.T) {
	t.Parallel()
	at := func(s string) LineRow {
		v, err := time.Parse(time.DateTime, s)
		if err != nil {
			t.Fatal(err)
		}
		return LineRow{PlacedAt: v}
	}
	// 2011-05-31 23:30 UTC is 2011-06-01 in London (BST): both months.
	got := linesMonths([]LineRow{at("2011-05-31 23:30:00"), at("2011-05-10 12:00:00"), at("2010-12-05 08:00:00")})
	var s []string
	for _, m := range got {
		s = append(s, day(m))
	}
	if want := "2010-12-01 2011-05-01 2011-06-01"; strings.Join(s, " ") != want {
		t.Errorf("linesMonths = %v, want %s", s, want)
	}
}
