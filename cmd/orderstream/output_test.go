package main

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"
)

// TestFormatFlag parses --format and the deprecated --json on a command that
// prints table, json or csv and on one that prints table or json.
func TestFormatFlag(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		give       []string
		csv        bool
		want       outputFormat
		wantErr    string
		wantNotice bool
	}{
		{name: "default", want: formatTable},
		{name: "table", give: []string{"--format", "table"}, csv: true, want: formatTable},
		{name: "json", give: []string{"--format=json"}, csv: true, want: formatJSON},
		{name: "csv", give: []string{"--format", "csv"}, csv: true, want: formatCSV},
		{name: "csv where the result is no table", give: []string{"--format", "csv"}, wantErr: `invalid argument "csv" for "--format" flag: want table or json`},
		{name: "unknown", give: []string{"--format", "xml"}, csv: true, wantErr: `invalid argument "xml" for "--format" flag: want table, json or csv`},
		{name: "deprecated --json", give: []string{"--json"}, want: formatJSON, wantNotice: true},
		{name: "deprecated --json=false", give: []string{"--format", "json", "--json=false"}, want: formatTable, wantNotice: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var got outputFormat
			var asJSON bool
			cmd := &cobra.Command{Use: "x", SilenceUsage: true, SilenceErrors: true, RunE: func(*cobra.Command, []string) error { return nil }}
			if tt.csv {
				addFormatFlag(cmd, &got, formatCSV)
			} else {
				addJSONFormatFlag(cmd, &asJSON)
			}
			var stdout, stderr bytes.Buffer
			cmd.SetOut(&stdout)
			cmd.SetErr(&stderr)
			cmd.SetArgs(tt.give)
			err := cmd.Execute()
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Fatalf("error = %v, want %s", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !tt.csv {
				got = formatTable
				if asJSON {
					got = formatJSON
				}
			}
			if got != tt.want {
				t.Errorf("format = %s, want %s", got, tt.want)
			}
			if stdout.Len() != 0 {
				t.Errorf("stdout = %q, want nothing (a script parses it)", stdout.String())
			}
			if notice := strings.Contains(stderr.String(), "--json has been deprecated, use --format json"); notice != tt.wantNotice {
				t.Errorf("stderr = %q, want deprecation notice %t", stderr.String(), tt.wantNotice)
			}
		})
	}
}

// TestEveryResultCommandTakesFormat walks the command tree: the commands
// that print results take --format, and no command has a --json that is not
// the deprecated alias.
func TestEveryResultCommandTakesFormat(t *testing.T) {
	t.Parallel()
	want := []string{
		"analytics summary", "analytics revenue", "analytics orders", "analytics aov", "analytics customers",
		"analytics return-rate", "analytics top-products", "analytics generations", "dlq list", "dlq replay",
		"generations", "load", "orders place", "orders pay", "orders ship", "orders cancel", "orders refund", "relay parked", "replay", "search", "search admin generations", "status", "topic stats", "verify",
	}
	var got []string
	var walk func(*cobra.Command)
	walk = func(c *cobra.Command) {
		path := strings.TrimPrefix(c.CommandPath(), "orderstream ")
		if f := c.LocalFlags().Lookup("format"); f != nil {
			got = append(got, path)
			if f.Value.Type() != "format" {
				t.Errorf("%s: --format is a %s, not the shared output flag", path, f.Value.Type())
			}
		}
		if f := c.LocalFlags().Lookup("json"); f != nil && f.Deprecated == "" {
			t.Errorf("%s: --json is not the deprecated alias of --format json", path)
		}
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(newRootCmd())
	slices.Sort(want)
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Errorf("commands with --format:\n got %q\nwant %q", got, want)
	}
}

// TestOutputFormats runs commands on real read models with each format and
// parses what they print: the three formats of a command carry the same
// rows.
func TestOutputFormats(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	ap, aflags := analyticsModel(ctx, t)
	if err := ap.CreateGeneration(ctx, 2); err != nil {
		t.Fatal(err)
	}
	_, sflags := searchModel(ctx, t)
	run := func(args ...string) string {
		t.Helper()
		root := newRootCmd()
		var out, errOut bytes.Buffer
		root.SetOut(&out)
		root.SetErr(&errOut)
		root.SetArgs(append(args, "--log-level", "error"))
		if err := root.ExecuteContext(ctx); err != nil {
			t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, errOut.String())
		}
		return out.String()
	}
	flags := func(fl ...[]string) []string { return slices.Concat(fl...) }

	t.Run("generations", func(t *testing.T) {
		args := flags([]string{"generations", "all"}, aflags, sflags)
		want := [][]string{{"analytics", "1", "serving"}, {"analytics", "2", "building"}, {"search", "1", "serving"}}
		checkTable(t, run(append(args, "--format", "table")...), []string{"projection", "generation", "state"}, want)
		checkCSV(t, run(append(args, "--format", "csv")...), []string{"projection", "generation", "state"}, want)
		var got []struct {
			Projection  string `json:"projection"`
			Generations []struct {
				Number uint32 `json:"generation"`
				State  string `json:"state"`
			} `json:"generations"`
		}
		out := run(append(args, "--format", "json")...)
		if err := json.Unmarshal([]byte(out), &got); err != nil {
			t.Fatalf("--format json: %v\n%s", err, out)
		}
		var rows [][]string
		for _, p := range got {
			for _, g := range p.Generations {
				rows = append(rows, []string{p.Projection, strconv.FormatUint(uint64(g.Number), 10), g.State})
			}
		}
		if !slices.EqualFunc(rows, want, slices.Equal) {
			t.Errorf("--format json rows = %q, want %q\n%s", rows, want, out)
		}
	})

	t.Run("analytics orders", func(t *testing.T) {
		args := flags([]string{"analytics", "orders"}, aflags)
		checkTable(t, run(append(args, "--format", "table")...), []string{"metric", "value"}, [][]string{{"orders", "0"}, {"credit", "notes", "0"}})
		checkCSV(t, run(append(args, "--format", "csv")...), []string{"orders", "credit_notes"}, [][]string{{"0", "0"}})
		var got map[string]int
		out := run(append(args, "--format", "json")...)
		if err := json.Unmarshal([]byte(out), &got); err != nil || len(got) != 2 || got["orders"] != 0 || got["credit_notes"] != 0 {
			t.Errorf("--format json = %v (%v), want orders and credit_notes 0\n%s", got, err, out)
		}
	})

	t.Run("search", func(t *testing.T) {
		args := flags([]string{"search", "heart"}, sflags)
		checkCSV(t, run(append(args, "--format", "csv")...),
			[]string{"order_number", "placed_at", "kind", "status", "country", "customer_id", "total", "currency", "line_count", "matched_lines"}, nil)
		var got struct {
			Total *int64            `json:"total"`
			Hits  []json.RawMessage `json:"hits"`
		}
		out := run(append(args, "--format", "json")...)
		if err := json.Unmarshal([]byte(out), &got); err != nil || got.Total == nil || *got.Total != 0 || got.Hits == nil || len(got.Hits) != 0 {
			t.Errorf("--format json = %+v (%v), want total 0 and no hits\n%s", got, err, out)
		}
		if out := run(append(args, "--format", "table")...); !strings.Contains(out, "0 orders match; showing 0") {
			t.Errorf("--format table = %q, want the count line", out)
		}
	})
}

// checkTable parses an aligned table: the header, then rows split on
// spaces.
func checkTable(t *testing.T, out string, header []string, want [][]string) {
	t.Helper()
	lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
	if !slices.Equal(strings.Fields(lines[0]), header) {
		t.Errorf("table header = %q, want %q\n%s", lines[0], header, out)
	}
	var rows [][]string
	for _, l := range lines[1:] {
		rows = append(rows, strings.Fields(l))
	}
	if !slices.EqualFunc(rows, want, slices.Equal) {
		t.Errorf("table rows = %q, want %q\n%s", rows, want, out)
	}
}

// checkCSV parses CSV: the header, then the rows.
func checkCSV(t *testing.T, out string, header []string, want [][]string) {
	t.Helper()
	recs, err := csv.NewReader(strings.NewReader(out)).ReadAll()
	if err != nil || len(recs) == 0 {
		t.Fatalf("csv: %v\n%s", err, out)
	}
	if !slices.Equal(recs[0], header) {
		t.Errorf("csv header = %q, want %q", recs[0], header)
	}
	if !slices.EqualFunc(recs[1:], want, slices.Equal) {
		t.Errorf("csv rows = %q, want %q\n%s", recs[1:], want, out)
	}
}
