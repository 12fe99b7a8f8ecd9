package schemas_test

import (
	"io/fs"
	"os"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/orderstream/orderstream/schemas"
)

// previousRelease is the schema set of the release before v2 (the v1 files
// as released), checked in so that the check needs no git history.
func previousRelease(t *testing.T) fs.FS {
	t.Helper()
	return os.DirFS("testdata/release-1")
}

// current returns the embedded schemas as a map the test can break.
func current(t *testing.T) fstest.MapFS {
	t.Helper()
	m := fstest.MapFS{}
	err := fs.WalkDir(schemas.Files(), ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(schemas.Files(), p)
		m[p] = &fstest.MapFile{Data: b}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func edit(t *testing.T, m fstest.MapFS, name, old, new string) {
	t.Helper()
	s := string(m[name].Data)
	if !strings.Contains(s, old) {
		t.Fatalf("%s does not contain %q", name, old)
	}
	m[name] = &fstest.MapFile{Data: []byte(strings.Replace(s, old, new, 1))}
}

// TestCompatibilityEmbedded: this build's schemas pass against the
// previous release, and the v1→v2 changes of order.placed are listed.
func TestCompatibilityEmbedded(t *testing.T) {
	t.Parallel()
	rep, err := schemas.CheckCompatibility(previousRelease(t), schemas.Files(), schemas.NewUpcasters())
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range rep.Problems {
		t.Errorf("problem: %s", p)
	}
	var changes []string
	for _, c := range rep.Changes {
		changes = append(changes, c.String())
	}
	want := []string{
		"order.placed v1→v2: field channel: added",
		"order.placed v1→v2: field country: removed",
		"order.placed v1→v2: field customer: added",
		"order.placed v1→v2: field customer_id: removed",
		"order.placed v1→v2: field country: no longer required",
		"order.placed v1→v2: field customer: became required",
	}
	if strings.Join(changes, "\n") != strings.Join(want, "\n") {
		t.Errorf("changes v1→v2:\n%s\nwant\n%s", strings.Join(changes, "\n"), strings.Join(want, "\n"))
	}
}

// TestCompatibilityBroken: deliberately broken schema sets fail, each with
// a problem naming the event, the version, the field and the rule.
func TestCompatibilityBroken(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		break_ func(t *testing.T, m fstest.MapFS)
		up     *schemas.Upcasters
		want   string // one problem's text
	}{
		{name: "v1 field removed without a version bump",
			break_: func(t *testing.T, m fstest.MapFS) {
				edit(t, m, "v1/order.paid.json", `"reference": {"$ref": "defs.json#/$defs/text", "maxLength": 128}`, `"ref": {"type": "string"}`)
			},
			want: "order.paid v1: field reference: removed; a published version changes only in annotations"},
		{name: "v1 optional field added (strict readers refuse it)",
			break_: func(t *testing.T, m fstest.MapFS) {
				edit(t, m, "v1/order.shipped.json", `"properties": {`, `"properties": {"eta": {"type": "string"}, `)
			},
			want: "order.shipped v1: field eta: added; "},
		{name: "v1 limit tightened through the shared definitions",
			break_: func(t *testing.T, m fstest.MapFS) {
				edit(t, m, "v1/defs.json", `"maxLength": 512}`, `"maxLength": 256}`)
			},
			want: "order.placed v1: field lines[].description: maxLength changed from 512 to 256; "},
		{name: "v1 field became required",
			break_: func(t *testing.T, m fstest.MapFS) {
				edit(t, m, "v1/order.refunded.json", `"required": ["amount"]`, `"required": ["amount", "reason"]`)
			},
			want: "order.refunded v1: field reason: became required; "},
		{name: "a published version removed",
			break_: func(t *testing.T, m fstest.MapFS) { delete(m, "v1/order.cancelled.json") },
			want:   "order.cancelled v1: v1/order.cancelled.json was published and is gone"},
		{name: "a type missing from the new version",
			break_: func(t *testing.T, m fstest.MapFS) { delete(m, "v2/order.shipped.json") },
			want:   "order.shipped v2: v2/order.shipped.json missing"},
		{name: "no upcaster from v1",
			break_: func(*testing.T, fstest.MapFS) {},
			up:     &schemas.Upcasters{},
			want:   "order.placed v1: no upcaster from v1 to v2: "},
		{name: "a version beyond the Go types",
			break_: func(t *testing.T, m fstest.MapFS) { m["v3/envelope.json"] = m["v2/envelope.json"] },
			want:   "newest schema directory is v3 but the Go types are schemas.CurrentVersion = 2 [rule version-complete]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			m := current(t)
			tt.break_(t, m)
			up := tt.up
			if up == nil {
				up = schemas.NewUpcasters()
			}
			rep, err := schemas.CheckCompatibility(previousRelease(t), m, up)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, p := range rep.Problems {
				got = append(got, p.String())
				if strings.Contains(p.String(), tt.want) {
					return
				}
			}
			t.Fatalf("problems:\n%s\nwant one containing %q", strings.Join(got, "\n"), tt.want)
		})
	}
}

// TestCompatibilityAnnotationsOnly: a new description of a published
// version is not a problem.
func TestCompatibilityAnnotationsOnly(t *testing.T) {
	t.Parallel()
	m := current(t)
	edit(t, m, "v1/order.paid.json", `"description": "Payment of a sale in full."`, `"description": "Payment of a sale, in full.", "$comment": "reworded"`)
	rep, err := schemas.CheckCompatibility(previousRelease(t), m, schemas.NewUpcasters())
	if err != nil || len(rep.Problems) > 0 {
		t.Fatalf("problems %v, err %v", rep.Problems, err)
	}
}
