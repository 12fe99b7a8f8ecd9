package main

import (
	"bytes"
	"context"
	"encoding/json"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/orderstream/orderstream/internal/rebuild"
	"github.com/orderstream/orderstream/internal/testenv"
	"github.com/orderstream/orderstream/projections/analytics"
	"github.com/orderstream/orderstream/projections/search"
)

// TestRollbackRetiresAndCutoverServesAgain runs the commands on each real
// read model: 'rollback' lists the generation it rolled back from as retired
// (search listed it as building), 'generations cutover PROJECTION N' serves
// it again and retires the other, and a generation being built is refused.
func TestRollbackRetiresAndCutoverServesAgain(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		model func(context.Context, *testing.T) (rebuild.Projection, []string)
	}{
		{"analytics", analyticsModel},
		{"search", searchModel},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			p, flags := tc.model(ctx, t)
			testRollbackAndCutover(ctx, t, p, flags)
		})
	}
}

// analyticsModel is a ClickHouse read model in a database of its own,
// migrated (generation 1 serving), and the flags that name it.
func analyticsModel(ctx context.Context, t *testing.T) (rebuild.Projection, []string) {
	cfg := analytics.Config{Addr: testenv.ClickHouseAddr(t), Database: testenv.Name("gens")}
	p, err := rebuild.NewAnalytics(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		conn, err := analytics.Open(cfg)
		if err == nil {
			err = conn.Exec(ctx, "DROP DATABASE IF EXISTS `"+cfg.Database+"`")
			_ = conn.Close()
		}
		if err != nil {
			t.Logf("drop database %s: %v", cfg.Database, err)
		}
		_ = p.Close()
	})
	if err := p.Store().Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	return p, []string{"--clickhouse-addr", cfg.Addr, "--clickhouse-database", cfg.Database}
}

// searchModel is an OpenSearch read model under a prefix of its own, set up
// (generation 1 serving), and the flags that name it.
func searchModel(ctx context.Context, t *testing.T) (rebuild.Projection, []string) {
	url := testenv.SearchURL(t)
	eng, err := search.NewEngine(search.EngineConfig{Kind: search.EngineOpenSearch, URL: url})
	if err != nil {
		t.Fatal(err)
	}
	p, err := rebuild.NewSearch(search.Config{Engine: eng, Prefix: testenv.Name("gens")}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := p.Admin().DropAll(ctx); err != nil {
			t.Logf("drop read model %s: %v", p.Admin().Names().Prefix, err)
		}
	})
	if _, err := p.Admin().Setup(ctx); err != nil {
		t.Fatal(err)
	}
	return p, []string{"--search-url", url, "--search-engine", "opensearch", "--index-prefix", p.Admin().Names().Prefix}
}

func testRollbackAndCutover(ctx context.Context, t *testing.T, p rebuild.Projection, flags []string) {
	name := p.Name()
	if err := p.CreateGeneration(ctx, 2); err != nil {
		t.Fatal(err)
	}
	if err := p.Cutover(ctx, 2); err != nil {
		t.Fatal(err)
	}
	run := func(args ...string) (string, error) {
		t.Helper()
		cmd := newRootCmd()
		var out bytes.Buffer
		cmd.SetArgs(append(append(args, flags...), "--log-level", "error"))
		cmd.SetOut(&out)
		cmd.SetErr(&out)
		err := cmd.ExecuteContext(ctx)
		return out.String(), err
	}
	states := func() string {
		t.Helper()
		out, err := run("generations", name, "--format", "json")
		if err != nil {
			t.Fatalf("generations: %v\n%s", err, out)
		}
		var got []struct {
			Generations []rebuild.Generation `json:"generations"`
		}
		if err := json.Unmarshal([]byte(out), &got); err != nil || len(got) != 1 {
			t.Fatalf("generations --format json = %q: %v", out, err)
		}
		var parts []string
		for _, g := range got[0].Generations {
			parts = append(parts, strconv.FormatUint(uint64(g.Number), 10)+"="+g.State)
		}
		return strings.Join(parts, " ")
	}
	steps := []struct {
		name       string
		args       []string
		wantOut    string
		wantErr    string
		wantStates string
	}{
		{name: "after the replay's cutover", wantStates: "1=retired 2=serving"},
		{name: "rollback", args: []string{"rollback", name}, wantOut: name + ": generation 1 serving (was 2, retired)", wantStates: "1=serving 2=retired"},
		{name: "serve the rolled-back-from generation again", args: []string{"generations", "cutover", name, "2"},
			wantOut: name + ": generation 2 serving (was 1, retired)", wantStates: "1=retired 2=serving"},
		{name: "the serving one", args: []string{"generations", "cutover", name, "2"}, wantOut: name + ": generation 2 serves already", wantStates: "1=retired 2=serving"},
		{name: "back to the older one", args: []string{"generations", "cutover", name, "1"},
			wantOut: name + ": generation 1 serving (was 2, retired)", wantStates: "1=serving 2=retired"},
		{name: "missing", args: []string{"generations", "cutover", name, "9"}, wantErr: "cutover " + name + " generation 9: no such generation", wantStates: "1=serving 2=retired"},
	}
	for _, st := range steps {
		if st.args != nil {
			out, err := run(st.args...)
			switch {
			case st.wantErr != "" && (err == nil || !strings.Contains(err.Error(), st.wantErr)):
				t.Fatalf("%s: err = %v, want %q", st.name, err, st.wantErr)
			case st.wantErr == "" && err != nil:
				t.Fatalf("%s: %v\n%s", st.name, err, out)
			case !strings.Contains(out, st.wantOut):
				t.Fatalf("%s: output %q lacks %q", st.name, out, st.wantOut)
			}
		}
		if got := states(); got != st.wantStates {
			t.Fatalf("%s: generations %s, want %s", st.name, got, st.wantStates)
		}
	}

	// A generation being built is not served: it is partial until its
	// replay has caught up.
	if err := p.CreateGeneration(ctx, 3); err != nil {
		t.Fatal(err)
	}
	if got := states(); got != "1=serving 2=retired 3=building" {
		t.Fatalf("with a new generation: %s", got)
	}
	if _, err := run("generations", "cutover", name, "3"); err == nil || !strings.Contains(err.Error(), "it is building") {
		t.Fatalf("cutover to a building generation: err = %v, want a refusal", err)
	}
	if got := states(); got != "1=serving 2=retired 3=building" {
		t.Fatalf("after the refusal: %s", got)
	}
}
