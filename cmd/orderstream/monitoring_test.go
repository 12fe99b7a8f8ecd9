package main

import (
	"encoding/json"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	dto "github.com/prometheus/client_model/go"
	"gopkg.in/yaml.v3"
)

const repoRoot = "../.."

// exportedMetrics are the metric names the code registers, read from its
// source: every prometheus.{Counter,Gauge,Histogram,Summary}Opts literal's
// Name (a string; a concatenation such as "orderstream_" + c + "_x" becomes
// a pattern; a variable stands for every orderstream_* string of its file),
// with the series a histogram or summary adds (_bucket, _sum, _count), and
// the names of the Go and process collectors where a file registers them.
type exportedMetrics struct {
	names    map[string]bool
	patterns []*regexp.Regexp
}

func (m exportedMetrics) has(name string) bool {
	if m.names[name] {
		return true
	}
	for _, p := range m.patterns {
		if p.MatchString(name) {
			return true
		}
	}
	return false
}

var (
	metricLiteral = regexp.MustCompile(`^orderstream_[a-z0-9_]+$`)
	suffixes      = map[string][]string{"HistogramOpts": {"_bucket", "_sum", "_count"}, "SummaryOpts": {"_sum", "_count"}}
)

func collectExportedMetrics(t *testing.T) exportedMetrics {
	t.Helper()
	m := exportedMetrics{names: map[string]bool{}}
	add := func(name, opts string) {
		m.names[name] = true
		for _, s := range suffixes[opts] {
			m.names[name+s] = true
		}
	}
	runtimeCollectors := false
	fset := token.NewFileSet()
	err := filepath.WalkDir(repoRoot, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			switch d.Name() {
			case ".git", "node_modules", "testdata", "vendor":
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, 0)
		if err != nil {
			return err
		}
		var fileLiterals []string
		ast.Inspect(f, func(n ast.Node) bool {
			if lit, ok := n.(*ast.BasicLit); ok && lit.Kind == token.STRING {
				if s, err := strconv.Unquote(lit.Value); err == nil && metricLiteral.MatchString(s) {
					fileLiterals = append(fileLiterals, s)
				}
			}
			if sel, ok := n.(*ast.SelectorExpr); ok && (sel.Sel.Name == "NewGoCollector" || sel.Sel.Name == "NewProcessCollector") {
				runtimeCollectors = true
			}
			return true
		})
		ast.Inspect(f, func(n ast.Node) bool {
			cl, ok := n.(*ast.CompositeLit)
			if !ok {
				return true
			}
			sel, ok := cl.Type.(*ast.SelectorExpr)
			if !ok {
				return true
			}
			if x, ok := sel.X.(*ast.Ident); !ok || x.Name != "prometheus" || !strings.HasSuffix(sel.Sel.Name, "Opts") {
				return true
			}
			for _, e := range cl.Elts {
				kv, ok := e.(*ast.KeyValueExpr)
				if !ok {
					continue
				}
				if k, ok := kv.Key.(*ast.Ident); !ok || k.Name != "Name" {
					continue
				}
				switch v := kv.Value.(type) {
				case *ast.BasicLit:
					s, err := strconv.Unquote(v.Value)
					if err != nil {
						t.Errorf("%s: metric name %s: %v", fset.Position(v.Pos()), v.Value, err)
						continue
					}
					add(s, sel.Sel.Name)
				case *ast.BinaryExpr:
					m.patterns = append(m.patterns, regexp.MustCompile("^"+namePattern(v)+"$"))
				default:
					for _, s := range fileLiterals {
						add(s, sel.Sel.Name)
					}
				}
			}
			return true
		})
		return nil
	})
	if err != nil {
		t.Fatalf("read the sources: %v", err)
	}
	if runtimeCollectors {
		reg := prometheus.NewRegistry()
		reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
		mfs, err := reg.Gather()
		if err != nil {
			t.Fatalf("gather the Go and process collectors: %v", err)
		}
		for _, mf := range mfs {
			opts := map[dto.MetricType]string{dto.MetricType_HISTOGRAM: "HistogramOpts", dto.MetricType_SUMMARY: "SummaryOpts"}[mf.GetType()]
			add(mf.GetName(), opts)
		}
	}
	return m
}

// namePattern turns "orderstream_" + cfg.Component + "_x" into a regular
// expression: literals quoted, anything else a run of [a-z0-9_].
func namePattern(e ast.Expr) string {
	switch v := e.(type) {
	case *ast.BinaryExpr:
		return namePattern(v.X) + namePattern(v.Y)
	case *ast.BasicLit:
		if s, err := strconv.Unquote(v.Value); err == nil {
			return regexp.QuoteMeta(s)
		}
	}
	return "[a-z0-9_]+"
}

var (
	quoted      = regexp.MustCompile(`"(?:[^"\\]|\\.)*"`)
	promqlIdent = regexp.MustCompile(`\$?[a-zA-Z_:][a-zA-Z0-9_:]*`)
)

// metricsIn returns the names in a PromQL expression that belong to
// orderstream or its Go and process collectors (label values, $variables
// and PromQL's own words left out).
func metricsIn(expr string) []string {
	var out []string
	for _, id := range promqlIdent.FindAllString(quoted.ReplaceAllString(expr, `""`), -1) {
		if strings.HasPrefix(id, "orderstream_") || strings.HasPrefix(id, "go_") || strings.HasPrefix(id, "process_") {
			out = append(out, id)
		}
	}
	return out
}

// The extractor finds names of every kind of registration: a literal, a
// name passed through a helper, a composed name, a histogram's series and
// the runtime collectors; and no unregistered name passes.
func TestExportedMetricsExtractor(t *testing.T) {
	t.Parallel()
	m := collectExportedMetrics(t)
	for _, tc := range []struct {
		name string
		want bool
	}{
		{"orderstream_relay_lag_bytes", true},                              // literal, producer/relay
		{"orderstream_consumer_lag_records", true},                         // literal with ConstLabels, consumers
		{"orderstream_search_documents_indexed_total", true},               // through a helper, projections/search
		{"orderstream_relay_topic_replayable", true},                       // composed, producer/topic
		{"orderstream_api_request_duration_seconds_bucket", true},          // histogram series, internal/api
		{"orderstream_verify_drift_orders", true},                          // internal/rebuild
		{"process_resident_memory_bytes", true},                            // process collector
		{"orderstream_relay_lag_bytes_bucket", false},                      // a gauge has no buckets
		{"orderstream_relay_not_a_metric", false},                          // never registered
		{"orderstream_api_request_duration_seconds_total", false},          // wrong suffix
		{"orderstream_consumer_events_processed_total_bucket", false},      // a counter has no buckets
		{"orderstream_relay_topic_replayable_extra_not_registered", false}, // pattern is anchored
	} {
		if got := m.has(tc.name); got != tc.want {
			t.Errorf("exported %q = %v, want %v", tc.name, got, tc.want)
		}
	}
	if got := metricsIn(`sum by (code) (rate(orderstream_api_requests_total{code=~"orderstream_x"}[$__rate_interval])) / go_goroutines`); strings.Join(got, ",") != "orderstream_api_requests_total,go_goroutines" {
		t.Errorf("metricsIn = %v", got)
	}
}

// Every dashboard panel queries a provisioned datasource, and every
// Prometheus query of a dashboard or alert rule names only metrics the
// daemons register.
func TestMonitoringQueriesUseExportedMetrics(t *testing.T) {
	t.Parallel()
	m := collectExportedMetrics(t)
	check := func(where, expr string) {
		if strings.TrimSpace(expr) == "" {
			t.Errorf("%s: empty query", where)
		}
		for _, name := range metricsIn(expr) {
			if !m.has(name) {
				t.Errorf("%s: metric %s is not registered by any daemon (query %q)", where, name, expr)
			}
		}
	}

	uids := map[string]bool{}
	dsFiles, _ := filepath.Glob(filepath.Join(repoRoot, "deploy/grafana/provisioning/datasources/*.yaml"))
	for _, path := range dsFiles {
		var cfg struct {
			Datasources []struct {
				UID  string `yaml:"uid"`
				Type string `yaml:"type"`
			} `yaml:"datasources"`
		}
		readYAML(t, path, &cfg)
		for _, ds := range cfg.Datasources {
			uids[ds.UID] = true
		}
	}
	if !uids["orderstream-prometheus"] {
		t.Errorf("no provisioned datasource with uid orderstream-prometheus in %v", dsFiles)
	}

	dashboards, _ := filepath.Glob(filepath.Join(repoRoot, "deploy/grafana/dashboards/*.json"))
	if len(dashboards) < 2 {
		t.Fatalf("dashboards: %v, want analytics.json and operations.json", dashboards)
	}
	promQueries := 0
	for _, path := range dashboards {
		raw, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		var d struct {
			UID    string  `json:"uid"`
			Panels []panel `json:"panels"`
		}
		if err := json.Unmarshal(raw, &d); err != nil {
			t.Errorf("%s: %v", path, err)
			continue
		}
		ids := map[int]bool{}
		for _, p := range flatten(d.Panels) {
			where := filepath.Base(path) + " panel " + strconv.Itoa(p.ID) + " " + strconv.Quote(p.Title)
			if ids[p.ID] {
				t.Errorf("%s: duplicate panel id", where)
			}
			ids[p.ID] = true
			if p.Type == "row" {
				continue
			}
			if !uids[p.Datasource.UID] {
				t.Errorf("%s: datasource uid %q is not provisioned", where, p.Datasource.UID)
			}
			if len(p.Targets) == 0 {
				t.Errorf("%s: no query", where)
			}
			for _, tg := range p.Targets {
				if tg.Datasource.UID != p.Datasource.UID {
					t.Errorf("%s %s: datasource %q differs from the panel's %q", where, tg.RefID, tg.Datasource.UID, p.Datasource.UID)
				}
				if p.Datasource.Type == "prometheus" {
					promQueries++
					check(where+" "+tg.RefID, tg.Expr)
				}
			}
		}
	}
	if promQueries == 0 {
		t.Error("no dashboard queries Prometheus")
	}

	var rules struct {
		Groups []struct {
			Rules []struct {
				Alert string `yaml:"alert"`
				Expr  string `yaml:"expr"`
			} `yaml:"rules"`
		} `yaml:"groups"`
	}
	readYAML(t, filepath.Join(repoRoot, "deploy/prometheus/alerts.yml"), &rules)
	n := 0
	for _, g := range rules.Groups {
		for _, r := range g.Rules {
			n++
			check("alerts.yml "+r.Alert, r.Expr)
		}
	}
	if n == 0 {
		t.Error("alerts.yml: no rules")
	}
}

type datasourceRef struct {
	Type string `json:"type"`
	UID  string `json:"uid"`
}

type panel struct {
	ID         int           `json:"id"`
	Title      string        `json:"title"`
	Type       string        `json:"type"`
	Datasource datasourceRef `json:"datasource"`
	Targets    []struct {
		RefID      string        `json:"refId"`
		Expr       string        `json:"expr"`
		Datasource datasourceRef `json:"datasource"`
	} `json:"targets"`
	Panels []panel `json:"panels"` // a collapsed row's
}

func flatten(ps []panel) []panel {
	var out []panel
	for _, p := range ps {
		out = append(out, p)
		out = append(out, flatten(p.Panels)...)
	}
	return out
}

func readYAML(t *testing.T, path string, v any) {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(raw, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}
