package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/orderstream/orderstream/internal/testfixture"
)

// runCmd runs the root command with args in the current directory and
// returns stdout and the error.
func runCmd(t *testing.T, args ...string) (string, error) {
	t.Helper()
	root := newRootCmd()
	var out, errOut bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&errOut)
	root.SetArgs(args)
	err := root.ExecuteContext(context.Background())
	return out.String(), err
}

func gitIn(t *testing.T, dir string, args ...string) {
	t.Helper()
	c := exec.Command("git", args...)
	c.Dir = dir
	c.Env = append(os.Environ(), "GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@example.com", "GIT_COMMITTER_NAME=t", "GIT_COMMITTER_EMAIL=t@example.com")
	if out, err := c.CombinedOutput(); err != nil {
		t.Fatalf("git %v: %v: %s", args, err, out)
	}
}

// writeSet writes the release-1 schemas (optionally edited) under dir/schemas.
func writeSet(t *testing.T, dir string, edit func(name, text string) string) {
	t.Helper()
	src := filepath.Join(testfixture.ModuleRoot(t), "schemas", "testdata", "release-1", "v1")
	entries, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(dir, "schemas", "v1"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(src, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		text := string(b)
		if edit != nil {
			text = edit(e.Name(), text)
		}
		if err := os.WriteFile(filepath.Join(dir, "schemas", "v1", e.Name()), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// TestSchemasCheck: the gate passes against the previous release's set as
// a directory, as a git ref of a full clone and of a shallow clone; it
// fails, naming event, field and rule, against a previous release whose v1
// had a field this build's v1 lacks (as if this build had removed it); a
// ref missing from a shallow clone is a usage error that says to fetch it.
// Not parallel: git runs in the working directory (t.Chdir).
func TestSchemasCheck(t *testing.T) {
	if _, err := exec.LookPath("git"); err != nil {
		t.Fatalf("git is needed: %v", err)
	}
	root := testfixture.ModuleRoot(t)
	out, err := runCmd(t, "schemas", "check", "--against", filepath.Join(root, "schemas", "testdata", "release-1"))
	if err != nil || !strings.Contains(out, "ok: schemas v1..v2") || !strings.Contains(out, "order.placed v1→v2: field customer_id: removed") {
		t.Fatalf("check against the checked-in release: %v\n%s", err, out)
	}

	repo := t.TempDir()
	gitIn(t, repo, "init", "-q", "-b", "main")
	writeSet(t, repo, nil)
	gitIn(t, repo, "add", ".")
	gitIn(t, repo, "commit", "-q", "-m", "release 1")
	gitIn(t, repo, "tag", "release-1")
	// A later release whose v1 had one more optional field: this build,
	// which lacks it, would refuse events carrying it.
	writeSet(t, repo, func(name, text string) string {
		if name == "order.paid.json" {
			return strings.Replace(text, `"properties": {`, `"properties": {"method": {"type": "string"}, `, 1)
		}
		return text
	})
	gitIn(t, repo, "commit", "-q", "-am", "paid method")
	shallow := t.TempDir()
	gitIn(t, shallow, "clone", "-q", "--depth=1", "file://"+repo, ".")

	tests := []struct {
		name, dir, ref string
		want           string
		wantErr        bool
		usage          bool
	}{
		{name: "full clone, release tag", dir: repo, ref: "release-1", want: "ok: schemas v1..v2 compatible with release-1"},
		{name: "full clone, broken", dir: repo, ref: "main", wantErr: true,
			want: "PROBLEM  order.paid v1: field method: removed; a published version changes only in annotations"},
		{name: "shallow clone, its head", dir: shallow, ref: "HEAD", wantErr: true, want: "[rule version-immutable]"},
		{name: "shallow clone, a ref it lacks", dir: shallow, ref: "release-1", wantErr: true, usage: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Chdir(tt.dir)
			out, err := runCmd(t, "schemas", "check", "--against", tt.ref)
			var ue *usageError
			if (err != nil) != tt.wantErr || errors.As(err, &ue) != tt.usage {
				t.Fatalf("error = %v (usage %v), want error %v usage %v\n%s", err, errors.As(err, &ue), tt.wantErr, tt.usage, out)
			}
			if tt.usage {
				if !strings.Contains(err.Error(), "git fetch") {
					t.Fatalf("usage error %q does not say to fetch the ref", err)
				}
				return
			}
			if !strings.Contains(out, tt.want) {
				t.Fatalf("output:\n%s\nwant %q", out, tt.want)
			}
			if tt.wantErr && exitCode(err) != 1 {
				t.Fatalf("exit code %d, want 1", exitCode(err))
			}
		})
	}
}

// TestSchemasListShow: list names every type at every version with how it
// is read; show prints the file of the version asked.
func TestSchemasListShow(t *testing.T) {
	out, err := runCmd(t, "schemas", "list")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"order.placed     1        schemas/v1/order.placed.json     v2, upcast", "order.placed     2        schemas/v2/order.placed.json     itself (newest)"} {
		if !strings.Contains(out, want) {
			t.Errorf("list:\n%s\nwant a line %q", out, want)
		}
	}
	out, err = runCmd(t, "schemas", "show", "order.placed", "--version", "1")
	if err != nil || !strings.Contains(out, `"customer_id"`) || strings.Contains(out, `"channel"`) {
		t.Fatalf("show v1: %v\n%s", err, out)
	}
	out, err = runCmd(t, "schemas", "show", "order.placed")
	if err != nil || !strings.Contains(out, `"channel"`) {
		t.Fatalf("show newest: %v\n%s", err, out)
	}
	var ue *usageError
	if _, err := runCmd(t, "schemas", "show", "order.lost"); !errors.As(err, &ue) {
		t.Fatalf("show of an unknown type: %v, want a usage error", err)
	}
	if _, err := runCmd(t, "schemas", "show", "order.placed", "--version", "9"); !errors.As(err, &ue) {
		t.Fatalf("show of an unknown version: %v, want a usage error", err)
	}
	if _, err := runCmd(t, "import", "--event-version", "3", "x.csv"); !errors.As(err, &ue) || !strings.Contains(err.Error(), "--event-version 3") {
		t.Fatalf("import --event-version 3: %v, want a usage error naming the flag", err)
	}
}
