package main

import (
	"os/exec"
	"strings"
	"testing"
)

// TestLayers checks the package map of ARCHITECTURE.md against the
// imports of every package (tests excluded): imports point inward.
func TestLayers(t *testing.T) {
	t.Parallel()
	const mod = "github.com/orderstream/orderstream/"
	out, err := exec.Command("go", "list", "-f", "{{.ImportPath}} {{join .Imports \" \"}}", mod+"...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	imports := map[string][]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Fields(line)
		pkg := strings.TrimPrefix(f[0], mod)
		for _, imp := range f[1:] {
			if strings.HasPrefix(imp, mod) {
				imports[pkg] = append(imports[pkg], strings.TrimPrefix(imp, mod))
			}
		}
		if _, ok := imports[pkg]; !ok {
			imports[pkg] = nil
		}
	}
	under := func(p string, prefixes ...string) bool {
		for _, pre := range prefixes {
			if p == pre || strings.HasPrefix(p, pre+"/") {
				return true
			}
		}
		return false
	}
	helpers := []string{"internal/run", "internal/logging", "internal/parallel", "internal/retry", "internal/connect", "internal/tracing"}
	testSupport := []string{"internal/testenv", "internal/testfixture", "internal/readmodeltest", "internal/chdb", "internal/scaledata"}
	apps := []string{"internal/api", "internal/rebuild", "internal/status", "internal/web", "cmd"}
	appOf := func(p string) string {
		for _, a := range apps {
			if a != "cmd" && under(p, a) {
				return a
			}
		}
		return ""
	}
	for pkg, imps := range imports {
		for _, imp := range imps {
			var why string
			switch {
			case under(imp, testSupport...) && !under(pkg, testSupport...):
				why = "test support is imported by tests only"
			case pkg == "schemas":
				why = "the contract imports nothing of orderstream"
			case under(pkg, helpers...):
				why = "helpers import nothing of orderstream"
			case pkg == "producer/order" && imp != "schemas":
				why = "the domain imports only the contract"
			case under(pkg, "consumers") && under(imp, "producer", "projections"):
				why = "the runtime imports neither the write side nor the read models"
			case pkg == "projections" && !under(imp, "consumers", "schemas") && !under(imp, helpers...):
				why = "the read models' shared generation and interface import only the runtime, the contract and helpers"
			case under(pkg, "projections") && (under(imp, "producer") || (under(imp, "projections") && imp != "projections" && !under(imp, pkg))):
				why = "a read model imports neither the write side nor another read model"
			case appOf(pkg) != "" && appOf(imp) != "" && appOf(pkg) != appOf(imp):
				why = "an application is a room of its own: what two share belongs to a layer below"
			case under(pkg, "internal/rebuild", "internal/status") && strings.HasPrefix(imp, "projections/"):
				why = "rebuild and status handle every read model through projections.ReadModel, never a concrete one"
			case under(pkg, "producer", "consumers", "projections", "schemas") && under(imp, apps...):
				why = "a layer never imports an application"
			default:
				continue
			}
			t.Errorf("%s imports %s: %s (ARCHITECTURE.md, Package map)", pkg, imp, why)
		}
	}
	if len(imports) < 20 {
		t.Fatalf("go list listed %d packages, want every package of the module", len(imports))
	}
}
