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
	"github.com/orderstream/orderstream/projections/search"
)

// TestSearchRollbackRetiresAndCutoverServesAgain runs the commands on the
// real search engine: 'rollback search' lists the generation it rolled back
// from as retired (not building), 'generations cutover search N' serves it
// again and retires the other, and a generation being built is refused.
func TestSearchRollbackRetiresAndCutoverServesAgain(t *testing.T) {
	t.Parallel()
	url := testenv.SearchURL(t)
	prefix := testenv.Name("gens")
	eng, err := search.NewEngine(search.EngineConfig{Kind: search.EngineOpenSearch, URL: url})
	if err != nil {
		t.Fatal(err)
	}
	admin, err := search.NewAdmin(search.Config{Engine: eng, Prefix: prefix})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := admin.DropAll(ctx); err != nil {
			t.Logf("drop read model %s: %v", prefix, err)
		}
	})
	if _, err := admin.Setup(ctx); err != nil {
		t.Fatal(err)
	}
	if err := admin.CreateGeneration(ctx, 2); err != nil {
		t.Fatal(err)
	}
	if err := admin.Cutover(ctx, 2); err != nil {
		t.Fatal(err)
	}

	run := func(args ...string) (string, error) {
		t.Helper()
		cmd := newRootCmd()
		var out bytes.Buffer
		cmd.SetArgs(append(args, "--search-url", url, "--search-engine", "opensearch", "--index-prefix", prefix, "--log-level", "error"))
		cmd.SetOut(&out)
		cmd.SetErr(&out)
		err := cmd.ExecuteContext(ctx)
		return out.String(), err
	}
	states := func() string {
		t.Helper()
		out, err := run("generations", "search", "--json")
		if err != nil {
			t.Fatalf("generations: %v\n%s", err, out)
		}
		var got []struct {
			Generations []rebuild.Generation `json:"generations"`
		}
		if err := json.Unmarshal([]byte(out), &got); err != nil || len(got) != 1 {
			t.Fatalf("generations --json = %q: %v", out, err)
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
		{name: "rollback", args: []string{"rollback", "search"}, wantOut: "search: generation 1 serving (was 2, retired)", wantStates: "1=serving 2=retired"},
		{name: "serve the rolled-back-from generation again", args: []string{"generations", "cutover", "search", "2"},
			wantOut: "search: generation 2 serving (was 1, retired)", wantStates: "1=retired 2=serving"},
		{name: "the serving one", args: []string{"generations", "cutover", "search", "2"}, wantOut: "search: generation 2 serves already", wantStates: "1=retired 2=serving"},
		{name: "back to the older one", args: []string{"generations", "cutover", "search", "1"},
			wantOut: "search: generation 1 serving (was 2, retired)", wantStates: "1=serving 2=retired"},
		{name: "missing", args: []string{"generations", "cutover", "search", "9"}, wantErr: "cutover search generation 9: no such generation", wantStates: "1=serving 2=retired"},
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
	if err := admin.CreateGeneration(ctx, 3); err != nil {
		t.Fatal(err)
	}
	if got := states(); got != "1=serving 2=retired 3=building" {
		t.Fatalf("with a new generation: %s", got)
	}
	if _, err := run("generations", "cutover", "search", "3"); err == nil || !strings.Contains(err.Error(), "it is building") {
		t.Fatalf("cutover to a building generation: err = %v, want a refusal", err)
	}
	if n, err := admin.Serving(ctx); err != nil || n != 1 {
		t.Fatalf("serving after the refusal: %d, %v; want 1", n, err)
	}
}
