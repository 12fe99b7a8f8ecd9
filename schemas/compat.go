package schemas

import (
	"encoding/json"
	"fmt"
	"io/fs"
	"path"
	"reflect"
	"slices"
	"sort"
	"strconv"
	"strings"
)

// Rules of CheckCompatibility. Each Problem names one.
const (
	// RuleVersionImmutable: the schema of a published (event type,
	// version) may change only in annotations (title, description,
	// $comment, examples). Any other change breaks readers of that
	// version already running (consumers decode strictly: an unknown field
	// is poison) or the events of it already in the topics. Source:
	// ARCHITECTURE.md, "Changing an event".
	RuleVersionImmutable = "version-immutable"
	// RuleVersionKept: a published version stays, schemas and all: topics
	// keep its events forever and replays read them.
	RuleVersionKept = "version-kept"
	// RuleUpcasterRequired: every version of an event type below
	// CurrentVersion has an upcaster to the next (Upcasters.Has), so that
	// a replay from offset zero reaches the readers in the shape they read.
	RuleUpcasterRequired = "upcaster-required"
	// RuleVersionComplete: the versions are 1, 2, … N without gaps, N is
	// CurrentVersion, and every version holds the envelope and every event
	// type of the version before it.
	RuleVersionComplete = "version-complete"
)

// Problem is one way a set of schemas breaks a reader. Field is the path of
// the field in the payload ("customer_id", "lines[].unit_price.amount"), ""
// for the whole schema.
type Problem struct {
	EventType string // "order.placed", or "envelope"
	Version   int
	Field     string
	Rule      string
	Detail    string
}

func (p Problem) String() string {
	field := ""
	if p.Field != "" {
		field = " field " + p.Field + ":"
	}
	return fmt.Sprintf("%s v%d:%s %s [rule %s]", p.EventType, p.Version, field, p.Detail, p.Rule)
}

// Change is one difference between two versions of an event type, as
// CheckCompatibility lists them between consecutive versions (informative:
// a new version may change anything, its upcaster carries old events over).
type Change struct {
	EventType string
	From, To  int
	Field     string
	Detail    string
}

func (c Change) String() string {
	field := ""
	if c.Field != "" {
		field = " field " + c.Field + ":"
	}
	return fmt.Sprintf("%s v%d→v%d:%s %s", c.EventType, c.From, c.To, field, c.Detail)
}

// CompatReport is the answer of CheckCompatibility.
type CompatReport struct {
	Problems []Problem // empty when compatible
	Changes  []Change  // between consecutive versions of cur
}

// CheckCompatibility compares cur, the schemas of this build (Files()),
// with prev, the schemas of a previous release (the same layout:
// v<N>/<name>.json), and reports every Problem (rules Rule*), each naming
// the event type, version, field and rule. u is the upcaster chain of this
// build. prev may be empty (nothing published yet). The error is for sets
// that cannot be read (a file that is not JSON); it names the file.
func CheckCompatibility(prev, cur fs.FS, u *Upcasters) (CompatReport, error) {
	var rep CompatReport
	ps, err := loadSet(prev)
	if err != nil {
		return rep, fmt.Errorf("previous schemas: %w", err)
	}
	cs, err := loadSet(cur)
	if err != nil {
		return rep, fmt.Errorf("current schemas: %w", err)
	}
	for _, v := range ps.versions() {
		for _, name := range ps.names(v) {
			typ := strings.TrimSuffix(name, ".json")
			if name == "defs.json" {
				continue // compared where it is used, through the $refs
			}
			if _, ok := cs[v][name]; !ok {
				rep.Problems = append(rep.Problems, Problem{EventType: typ, Version: v, Rule: RuleVersionKept,
					Detail: fmt.Sprintf("v%d/%s was published and is gone; events of it stay in the topics and replays read them: restore it", v, name)})
				continue
			}
			a, aerr := ps.resolved(v, name)
			b, berr := cs.resolved(v, name)
			if aerr != nil || berr != nil {
				return rep, fmt.Errorf("v%d/%s: %w", v, name, firstErr(aerr, berr))
			}
			for _, d := range diff(a, b, "") {
				rep.Problems = append(rep.Problems, Problem{EventType: typ, Version: v, Field: d.field, Rule: RuleVersionImmutable,
					Detail: d.detail + fmt.Sprintf("; a published version changes only in annotations (readers of v%d decode strictly and its events are in the topics): put the change in a new version (v%d) with an upcaster", v, ps.max()+1)})
			}
		}
	}
	vs := cs.versions()
	for i, v := range vs {
		if v != i+1 {
			rep.Problems = append(rep.Problems, Problem{EventType: "schemas", Version: v, Rule: RuleVersionComplete,
				Detail: fmt.Sprintf("versions %v: want 1, 2, … without gaps", vs)})
			break
		}
	}
	if len(vs) > 0 && vs[len(vs)-1] != CurrentVersion {
		rep.Problems = append(rep.Problems, Problem{EventType: "schemas", Version: vs[len(vs)-1], Rule: RuleVersionComplete,
			Detail: fmt.Sprintf("newest schema directory is v%d but the Go types are schemas.CurrentVersion = %d", vs[len(vs)-1], CurrentVersion)})
	}
	for i, v := range vs {
		if i == 0 {
			if _, ok := cs[v]["envelope.json"]; !ok {
				rep.Problems = append(rep.Problems, Problem{EventType: "envelope", Version: v, Rule: RuleVersionComplete, Detail: fmt.Sprintf("v%d/envelope.json missing", v)})
			}
			continue
		}
		prevV := vs[i-1]
		for _, name := range cs.names(prevV) {
			typ := strings.TrimSuffix(name, ".json")
			if _, ok := cs[v][name]; !ok {
				rep.Problems = append(rep.Problems, Problem{EventType: typ, Version: v, Rule: RuleVersionComplete,
					Detail: fmt.Sprintf("v%d/%s missing: every version holds every file of the version before (an unchanged type gets a copy and an identity upcaster)", v, name)})
				continue
			}
			if !strings.HasPrefix(name, "order.") {
				continue
			}
			if !u.Has(typ, prevV) {
				rep.Problems = append(rep.Problems, Problem{EventType: typ, Version: prevV, Rule: RuleUpcasterRequired,
					Detail: fmt.Sprintf("no upcaster from v%d to v%d: events of v%d in the topics would reach readers in a shape they do not read; register one in schemas.NewUpcasters (with table tests)", prevV, v, prevV)})
			}
			a, aerr := cs.resolved(prevV, name)
			b, berr := cs.resolved(v, name)
			if aerr != nil || berr != nil {
				return rep, fmt.Errorf("%s: %w", name, firstErr(aerr, berr))
			}
			for _, d := range diff(a, b, "") {
				rep.Changes = append(rep.Changes, Change{EventType: typ, From: prevV, To: v, Field: d.field, Detail: d.detail})
			}
		}
	}
	return rep, nil
}

func firstErr(errs ...error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// schemaSet is a set of parsed schema files: version → file name → JSON.
type schemaSet map[int]map[string]any

func loadSet(fsys fs.FS) (schemaSet, error) {
	set := schemaSet{}
	if fsys == nil {
		return set, nil
	}
	err := fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || path.Ext(p) != ".json" {
			return err
		}
		dir, name := path.Split(p)
		v, ok := versionDir(strings.TrimSuffix(dir, "/"))
		if !ok {
			return nil // testdata, other files
		}
		b, err := fs.ReadFile(fsys, p)
		if err != nil {
			return err
		}
		var doc any
		if err := json.Unmarshal(b, &doc); err != nil {
			return fmt.Errorf("%s: not JSON: %w", p, err)
		}
		if set[v] == nil {
			set[v] = map[string]any{}
		}
		set[v][name] = doc
		return nil
	})
	return set, err
}

// versionDir reads "v<N>" (the last element of dir).
func versionDir(dir string) (int, bool) {
	base := path.Base(dir)
	if !strings.HasPrefix(base, "v") {
		return 0, false
	}
	v, err := strconv.Atoi(base[1:])
	return v, err == nil && v >= 1
}

func (s schemaSet) versions() []int {
	var vs []int
	for v := range s {
		vs = append(vs, v)
	}
	slices.Sort(vs)
	return vs
}

func (s schemaSet) max() int {
	vs := s.versions()
	if len(vs) == 0 {
		return 0
	}
	return vs[len(vs)-1]
}

func (s schemaSet) names(v int) []string {
	var ns []string
	for n := range s[v] {
		ns = append(ns, n)
	}
	sort.Strings(ns)
	return ns
}

// resolved returns file name of version v with every $ref into the same
// version's files replaced by its target (siblings of a $ref kept beside
// the target's keywords) and the annotations dropped, ready for diff.
func (s schemaSet) resolved(v int, name string) (any, error) {
	return s.resolve(v, name, s[v][name], 0)
}

func (s schemaSet) resolve(v int, file string, node any, depth int) (any, error) {
	if depth > 32 {
		return nil, fmt.Errorf("v%d/%s: $ref nesting deeper than 32", v, file)
	}
	switch n := node.(type) {
	case []any:
		out := make([]any, len(n))
		for i, x := range n {
			r, err := s.resolve(v, file, x, depth)
			if err != nil {
				return nil, err
			}
			out[i] = r
		}
		return out, nil
	case map[string]any:
		out := map[string]any{}
		if ref, ok := n["$ref"].(string); ok {
			target, tfile, err := s.lookup(v, file, ref)
			if err != nil {
				return nil, err
			}
			r, err := s.resolve(v, tfile, target, depth+1)
			if err != nil {
				return nil, err
			}
			if m, ok := r.(map[string]any); ok {
				for k, x := range m {
					out[k] = x
				}
			}
		}
		for k, x := range n {
			if k == "$ref" || annotations[k] {
				continue
			}
			var r any
			var err error
			if props, ok := x.(map[string]any); ok && (k == "properties" || k == "patternProperties") {
				// names of fields, not keywords: "description" is a field here
				m := map[string]any{}
				for name, sub := range props {
					if m[name], err = s.resolve(v, file, sub, depth); err != nil {
						return nil, err
					}
				}
				r = m
			} else if r, err = s.resolve(v, file, x, depth); err != nil {
				return nil, err
			}
			out[k] = r
		}
		return out, nil
	}
	return node, nil
}

// annotations are the keywords that do not change what validates.
var annotations = map[string]bool{"title": true, "description": true, "$comment": true, "examples": true,
	"$id": true, "$schema": true, "$defs": true}

// lookup finds a $ref ("defs.json#/$defs/text", "#/$defs/x") among the
// files of version v.
func (s schemaSet) lookup(v int, file, ref string) (any, string, error) {
	target, pointer, _ := strings.Cut(ref, "#")
	if target == "" {
		target = file
	}
	doc, ok := s[v][target]
	if !ok {
		return nil, "", fmt.Errorf("v%d/%s: $ref %q: no file v%d/%s", v, file, ref, v, target)
	}
	cur := doc
	for _, tok := range strings.Split(strings.TrimPrefix(pointer, "/"), "/") {
		if tok == "" {
			continue
		}
		m, ok := cur.(map[string]any)
		if !ok {
			return nil, "", fmt.Errorf("v%d/%s: $ref %q does not resolve", v, file, ref)
		}
		if cur, ok = m[tok]; !ok {
			return nil, "", fmt.Errorf("v%d/%s: $ref %q does not resolve", v, file, ref)
		}
	}
	return cur, target, nil
}

type difference struct{ field, detail string }

// diff lists what differs between two resolved schemas, by payload field.
func diff(a, b any, field string) []difference {
	am, aok := a.(map[string]any)
	bm, bok := b.(map[string]any)
	if !aok || !bok {
		if reflect.DeepEqual(a, b) {
			return nil
		}
		return []difference{{field, fmt.Sprintf("%s changed from %s to %s", "schema", compact(a), compact(b))}}
	}
	var out []difference
	for _, k := range unionKeys(am, bm) {
		x, inA := am[k]
		y, inB := bm[k]
		switch k {
		case "properties":
			xp, _ := x.(map[string]any)
			yp, _ := y.(map[string]any)
			out = append(out, diffProperties(xp, yp, field)...)
			continue
		case "items":
			if inA && inB {
				out = append(out, diff(x, y, field+"[]")...)
				continue
			}
		case "required":
			out = append(out, diffRequired(x, y, field)...)
			continue
		}
		switch {
		case !inA:
			out = append(out, difference{field, fmt.Sprintf("keyword %s added (%s)", k, compact(y))})
		case !inB:
			out = append(out, difference{field, fmt.Sprintf("keyword %s removed (was %s)", k, compact(x))})
		case !reflect.DeepEqual(x, y):
			out = append(out, difference{field, fmt.Sprintf("%s changed from %s to %s", k, compact(x), compact(y))})
		}
	}
	return out
}

func diffProperties(a, b map[string]any, field string) []difference {
	var out []difference
	for _, k := range unionKeys(a, b) {
		sub := k
		if field != "" {
			sub = field + "." + k
		}
		x, inA := a[k]
		y, inB := b[k]
		switch {
		case !inA:
			out = append(out, difference{sub, "added"})
		case !inB:
			out = append(out, difference{sub, "removed"})
		default:
			out = append(out, diff(x, y, sub)...)
		}
	}
	return out
}

// unionKeys returns the keys of a and b, sorted, each once.
func unionKeys(a, b map[string]any) []string {
	keys := make([]string, 0, len(a)+len(b))
	for k := range a {
		keys = append(keys, k)
	}
	for k := range b {
		if _, ok := a[k]; !ok {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	return keys
}

func diffRequired(a, b any, field string) []difference {
	set := func(x any) map[string]bool {
		m := map[string]bool{}
		l, _ := x.([]any)
		for _, v := range l {
			if s, ok := v.(string); ok {
				m[s] = true
			}
		}
		return m
	}
	as, bs := set(a), set(b)
	var out []difference
	name := func(k string) string {
		if field == "" {
			return k
		}
		return field + "." + k
	}
	keys := make([]string, 0, len(as)+len(bs))
	for k := range as {
		keys = append(keys, k)
	}
	for k := range bs {
		if !as[k] {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	for _, k := range keys {
		switch {
		case as[k] && !bs[k]:
			out = append(out, difference{name(k), "no longer required"})
		case !as[k] && bs[k]:
			out = append(out, difference{name(k), "became required"})
		}
	}
	return out
}

func compact(v any) string {
	b, err := json.Marshal(v)
	if err != nil || len(b) > 120 {
		if len(b) > 120 {
			return string(b[:117]) + "..."
		}
		return fmt.Sprint(v)
	}
	return string(b)
}
