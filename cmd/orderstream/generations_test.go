package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/orderstream/orderstream/consumers"
	"github.com/orderstream/orderstream/internal/rebuild"
	"github.com/orderstream/orderstream/internal/testenv"
	"github.com/orderstream/orderstream/internal/testfixture"
	"github.com/orderstream/orderstream/projections"
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
		model func(context.Context, testing.TB) (projections.ReadModel, []string)
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
func analyticsModel(ctx context.Context, t testing.TB) (projections.ReadModel, []string) {
	cfg := analytics.Config{Addr: testenv.ClickHouseAddr(t), Database: testenv.Name("gens")}
	p, err := analytics.OpenReadModel(cfg)
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
func searchModel(ctx context.Context, t testing.TB) (projections.ReadModel, []string) {
	url := testenv.SearchURL(t)
	eng, err := search.NewEngine(search.EngineConfig{Kind: search.EngineOpenSearch, URL: url})
	if err != nil {
		t.Fatal(err)
	}
	p, err := search.NewReadModel(search.Config{Engine: eng, Prefix: testenv.Name("gens")})
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

func testRollbackAndCutover(ctx context.Context, t *testing.T, p projections.ReadModel, flags []string) {
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
			Generations []projections.Generation `json:"generations"`
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

// TestGenerationsTree runs the verbs of `generations` on each real read
// model, and their earlier spellings: create takes the next number and
// lists it building with its rows; the earlier spellings do the same work,
// print a one-line deprecation notice on stderr and nothing else there, and
// leave stdout what the new verb prints; dropping the serving generation is
// refused with the command that fixes it.
func TestGenerationsTree(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		model  func(context.Context, testing.TB) (projections.ReadModel, []string)
		create []string // the earlier spelling of create N
		drop   []string // the earlier spelling of drop N (N appended)
	}{
		{"analytics", analyticsModel, []string{"analytics", "generations", "create"}, []string{"analytics", "generations", "drop"}},
		{"search", searchModel, []string{"search", "admin", "create-generation"}, []string{"search", "admin", "drop-generation"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			p, flags := tc.model(ctx, t)
			run := func(args ...string) (stdout, stderr string, err error) {
				t.Helper()
				cmd := newRootCmd()
				var out, errOut bytes.Buffer
				cmd.SetArgs(append(append(args, flags...), "--log-level", "error"))
				cmd.SetOut(&out)
				cmd.SetErr(&errOut)
				err = cmd.ExecuteContext(ctx)
				return out.String(), errOut.String(), err
			}
			list := func() []projections.Generation {
				t.Helper()
				out, _, err := run("generations", "list", tc.name, "--format", "json")
				var got []struct {
					Generations []projections.Generation `json:"generations"`
				}
				if err != nil || json.Unmarshal([]byte(out), &got) != nil || len(got) != 1 {
					t.Fatalf("generations list --format json: %v\n%s", err, out)
				}
				return got[0].Generations
			}

			out, _, err := run("generations", "create", tc.name, "--format", "json")
			var created []generationResult
			if err != nil || json.Unmarshal([]byte(out), &created) != nil || len(created) != 1 ||
				created[0].Projection != tc.name || created[0].Generation != 2 || created[0].Result != "created" {
				t.Fatalf("generations create: %v, output %s; want generation 2 created", err, out)
			}
			gens := list()
			if len(gens) != 2 || gens[1].Number != 2 || gens[1].State != projections.StateBuilding || gens[1].Rows != 0 || gens[0].Rows != 0 {
				t.Fatalf("after create: %+v, want 1 serving and 2 building, both with 0 rows", gens)
			}
			// Both read models report the times the same way: 1 created and
			// cut over (by its setup), 2 created, neither retired.
			if g1, g2 := gens[0], gens[1]; g1.CreatedAt.IsZero() || g1.CutoverAt.IsZero() || g2.CreatedAt.IsZero() ||
				!g2.CutoverAt.IsZero() || !g1.RetiredAt.IsZero() || !g2.RetiredAt.IsZero() || time.Since(g2.CreatedAt) > 5*time.Minute {
				t.Fatalf("after create: %+v, want 1 created and cut over, 2 created just now, none retired", gens)
			}
			// One order written to generation 2 only: its rows are listed
			// there (analytics: its lines; search: one document).
			e := testfixture.RealEvents(t)[0]
			sink, closeSink, err := p.Sink(ctx, 2)
			if err != nil {
				t.Fatal(err)
			}
			err = sink.Write(ctx, []consumers.Record{{Topic: "orders", Key: []byte(e.AggregateID), Timestamp: e.OccurredAt, Event: e}})
			if err = errors.Join(err, closeSink()); err != nil {
				t.Fatal(err)
			}
			if sm, ok := p.(*search.ReadModel); ok {
				if err := sm.Admin().Refresh(ctx); err != nil {
					t.Fatal(err)
				}
			}
			if gens := list(); gens[0].Rows != 0 || gens[1].Rows < 1 || (tc.name == "search" && gens[1].Rows != 1) {
				t.Fatalf("after one order written to generation 2: %+v, want rows there only (search: 1 document)", gens)
			}

			out, errOut, err := run(append(tc.create, "3")...)
			wantNotice := "is deprecated: use 'orderstream generations create " + tc.name
			if err != nil || out != tc.name+": generation 3 created (building)\n" || strings.Count(errOut, "\n") != 1 || !strings.Contains(errOut, wantNotice) {
				t.Fatalf("%s 3: %v\nstdout %q\nstderr %q\nwant the new verb's line on stdout and one notice %q on stderr",
					strings.Join(tc.create, " "), err, out, errOut, wantNotice)
			}
			out, errOut, err = run(append(tc.drop, "2")...)
			if err != nil || out != tc.name+": generation 2 dropped\n" || !strings.Contains(errOut, "is deprecated: use 'orderstream generations drop "+tc.name) {
				t.Fatalf("%s 2: %v\nstdout %q\nstderr %q", strings.Join(tc.drop, " "), err, out, errOut)
			}
			if gens := list(); len(gens) != 2 || gens[0].Number != 1 || gens[1].Number != 3 || gens[1].State != projections.StateBuilding {
				t.Fatalf("after the aliases: %+v, want 1 serving and 3 building", gens)
			}

			_, _, err = run("generations", "drop", tc.name, "1")
			if !errors.Is(err, projections.ErrServing) || !strings.Contains(err.Error(), "orderstream generations cutover "+tc.name) {
				t.Fatalf("drop the serving generation: %v, want ErrServing and the command that serves another", err)
			}
		})
	}
}

// TestGenerationsCutoverChecked: a cutover of a building generation with
// --group is checked as a replay's cutover is: an empty generation beside a
// write side holding an order is refused (exit 1, nothing switched), and
// served with --force; the earlier spelling `analytics generations cutover`
// checks as well.
func TestGenerationsCutoverChecked(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	p, modelFlags := analyticsModel(ctx, t)
	if err := p.CreateGeneration(ctx, 2); err != nil {
		t.Fatal(err)
	}
	brokers := testenv.KafkaBrokers(t)
	topicName := testfixture.ProduceTopic(t, brokers, nil)
	pgURL := writeSideOf(ctx, t, "7f1c0a52-0000-4000-8000-00000000000c")
	run := func(args ...string) (string, error) {
		t.Helper()
		cmd := newRootCmd()
		var out bytes.Buffer
		cmd.SetArgs(append(append(args, modelFlags...), "--pg-url", pgURL, "--kafka-brokers", strings.Join(brokers, ","),
			"--topic", topicName, "--slot", "verify_test", "--log-level", "error"))
		cmd.SetOut(&out)
		cmd.SetErr(io.Discard)
		err := cmd.ExecuteContext(ctx)
		return out.String(), err
	}
	serving := func() uint32 {
		t.Helper()
		gens, err := p.Generations(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return projections.Serving(gens)
	}
	group := testenv.Name("nogroup")
	for _, args := range [][]string{
		{"generations", "cutover", "analytics", "2", "--group", group},
		{"analytics", "generations", "cutover", "2", "--group", group},
	} {
		if _, err := run(args...); !errors.Is(err, rebuild.ErrCutoverRefused) || exitCode(err) != 1 || serving() != 1 {
			t.Fatalf("%s: %v (exit %d), serving %d; want refused by the checks, 1 serving", strings.Join(args, " "), err, exitCode(err), serving())
		}
	}
	out, err := run("generations", "cutover", "analytics", "2", "--group", group, "--force")
	if err != nil || out != "analytics: generation 2 serving (was 1, retired)\n" || serving() != 2 {
		t.Fatalf("--force: %v, output %q, serving %d; want 2 serving", err, out, serving())
	}
}
