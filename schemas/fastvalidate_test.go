package schemas_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/go-json-experiment/json/jsontext"

	"github.com/orderstream/orderstream/internal/testfixture"
	"github.com/orderstream/orderstream/schemas"
)

// TestFastCheckerAgrees holds the fast path of Validate to the JSON Schema
// library: on every event of the real file the fast path must accept (else
// the write side pays the library's price), and on a sample of them, mutated
// one member at a time in every way the contract forbids and some it
// allows, the fast path may accept only what the library accepts.
func TestFastCheckerAgrees(t *testing.T) {
	v, err := schemas.NewValidator()
	if err != nil {
		t.Fatal(err)
	}
	evs := testfixture.RealEvents(t)
	var sample [][]byte
	for i, ev := range evs {
		raw, err := json.Marshal(ev)
		if err != nil {
			t.Fatal(err)
		}
		if !v.FastValid(raw) {
			t.Fatalf("event %d (%s of %s): the fast path refuses it (library: %v)", i, ev.EventType, ev.AggregateID, v.LibraryValidate(raw))
		}
		if i%13000 == 0 || i%13000 == 1 { // placed and paid/refunded alike
			sample = append(sample, raw)
		}
	}
	checked, refused, fast := 0, 0, 0
	for _, raw := range sample {
		for _, m := range mutations(t, raw) {
			checked++
			lib := v.LibraryValidate(m.event)
			if lib != nil {
				refused++
			}
			fv := v.FastValid(m.event)
			if fv {
				fast++
			}
			if fv && lib != nil {
				t.Errorf("%s: the fast path accepts what the library refuses (%v)\n%s", m.name, lib, m.event)
			}
			if (v.Validate(m.event) == nil) != (lib == nil) {
				t.Errorf("%s: Validate and the library disagree", m.name)
			}
		}
	}
	if refused == 0 || fast == 0 {
		t.Errorf("%d mutations: %d refused by the library, %d accepted by the fast path: the mutations test nothing", checked, refused, fast)
	}
	t.Logf("%d events accepted by the fast path; %d mutations of %d events: %d refused by the library, %d accepted by the fast path (the rest: the library's verdict)", len(evs), checked, len(sample), refused, fast)
}

type mutation struct {
	name  string
	event []byte
}

// jnode is a JSON value that keeps its members in order (the fast path
// reads event_type and schema_version before the payload, as the write side
// writes them).
type jnode struct {
	raw   []byte // a scalar, as written
	obj   bool
	arr   bool
	keys  []string
	elems []*jnode
}

func parse(t *testing.T, dec *jsontext.Decoder) *jnode {
	t.Helper()
	switch dec.PeekKind() {
	case '{', '[':
		tok, err := dec.ReadToken()
		if err != nil {
			t.Fatal(err)
		}
		n := &jnode{obj: tok.Kind() == '{', arr: tok.Kind() == '['}
		for k := dec.PeekKind(); k != '}' && k != ']'; k = dec.PeekKind() {
			if n.obj {
				name, err := dec.ReadToken()
				if err != nil {
					t.Fatal(err)
				}
				n.keys = append(n.keys, name.String())
			}
			n.elems = append(n.elems, parse(t, dec))
		}
		if _, err := dec.ReadToken(); err != nil {
			t.Fatal(err)
		}
		return n
	}
	v, err := dec.ReadValue()
	if err != nil {
		t.Fatal(err)
	}
	return &jnode{raw: bytes.Clone(v)}
}

func (n *jnode) append(b []byte) []byte {
	switch {
	case n.obj:
		b = append(b, '{')
		for i, k := range n.keys {
			if i > 0 {
				b = append(b, ',')
			}
			b = strconv.AppendQuote(b, k)
			b = append(b, ':')
			b = n.elems[i].append(b)
		}
		return append(b, '}')
	case n.arr:
		b = append(b, '[')
		for i, e := range n.elems {
			if i > 0 {
				b = append(b, ',')
			}
			b = e.append(b)
		}
		return append(b, ']')
	}
	return append(b, n.raw...)
}

// mutations returns raw changed at one place each, members kept in order:
// every member removed, every value replaced by values of other types and
// by edge values of its own type, an unknown member added to every object.
func mutations(t *testing.T, raw []byte) []mutation {
	t.Helper()
	root := parse(t, jsontext.NewDecoder(bytes.NewReader(raw)))
	var out []mutation
	emit := func(name string) { out = append(out, mutation{name, root.append(nil)}) }
	replacements := func(n *jnode) [][]byte {
		alts := []string{`null`, `true`, `1.5`, `-1`, `0`, `1e3`, `99999999999`, `""`, `"\u0000"`, strconv.Quote(strings.Repeat("x", 600)),
			`"GBP"`, `"gbp"`, `"2011-13-01T00:00:00Z"`, `"1969-12-31T23:59:59Z"`, `"2011-01-01T00:00:00+01:00"`, `"2011-01-01T00:00:00.5Z"`,
			`"-0.0001"`, `"12.5"`, `"123456789012345.5"`, `"sale"`, `"order"`, `"order.paid"`, `{}`, `[]`}
		if len(n.raw) > 1 && n.raw[0] == '"' {
			s, _ := strconv.Unquote(string(n.raw))
			alts = append(alts, strconv.Quote(s+"\x00"), strconv.Quote(s+"x"), strconv.Quote(strings.ToUpper(s)), strconv.Quote("-"+s))
		} else if len(n.raw) > 0 {
			alts = append(alts, string(n.raw)+".0", strings.TrimPrefix("-"+string(n.raw), "--"), string(n.raw)+"0")
		}
		out := make([][]byte, len(alts))
		for i, a := range alts {
			out[i] = []byte(a)
		}
		return out
	}
	var walk func(path string, n *jnode)
	walk = func(path string, n *jnode) {
		saved := *n
		for _, r := range replacements(n) {
			*n = jnode{raw: r}
			emit(fmt.Sprintf("%s = %s", path, r))
		}
		*n = saved
		switch {
		case n.obj:
			for i, k := range n.keys {
				keys, elems := n.keys, n.elems
				n.keys = append(append([]string{}, keys[:i]...), keys[i+1:]...)
				n.elems = append(append([]*jnode{}, elems[:i]...), elems[i+1:]...)
				emit(path + "/" + k + " removed")
				n.keys, n.elems = keys, elems
				walk(path+"/"+k, n.elems[i])
			}
			n.keys, n.elems = append(n.keys, "unknown"), append(n.elems, &jnode{raw: []byte(`"x"`)})
			emit(path + "/unknown added")
			n.keys, n.elems = n.keys[:len(n.keys)-1], n.elems[:len(n.elems)-1]
		case n.arr:
			for i := range min(len(n.elems), 2) { // the first lines stand for the others
				walk(fmt.Sprintf("%s/%d", path, i), n.elems[i])
			}
		}
	}
	walk("", root)
	return out
}

// TestMarshalSplicesPayload: Marshal writes what json.Marshal writes, byte
// for byte, on the real file's events.
func TestMarshalSplicesPayload(t *testing.T) {
	v, err := schemas.NewValidator()
	if err != nil {
		t.Fatal(err)
	}
	for i, ev := range testfixture.RealEvents(t) {
		if i%101 != 0 && i%101 != 1 {
			continue
		}
		want, err := json.Marshal(ev)
		if err != nil {
			t.Fatal(err)
		}
		got, err := v.Marshal(ev)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("event %d:\n got %s\nwant %s", i, got, want)
		}
	}
	if _, err := v.Marshal(schemas.Envelope{Payload: json.RawMessage(`{"x":`)}); err == nil {
		t.Error("an envelope whose payload is not JSON was marshalled without error")
	}
}

// TestClassOnlyPatterns checks which patterns the walk reads as one
// character class over the whole string, and that its verdict on them is
// regexp's.
func TestClassOnlyPatterns(t *testing.T) {
	for _, c := range []struct {
		pattern   string
		classOnly bool
	}{
		{`^[^\x00]*$`, true},
		{`^[a-z0-9_]*$`, true},
		{`^[^\x00]+$`, false}, // + is not *: the empty string differs
		{`[^\x00]*$`, false},
		{`^[^\x00]*`, false},
		{`^[A-Z]{3}$`, false},
		{`^(?m)[a-z]*$`, false},
		{`^-?[0-9]{1,14}(\.[0-9]{1,3})?$`, false},
	} {
		for _, s := range []string{"", "abc", "ab\x00c", "Ünïcödé ✓", "a\nb", "ABC", "\xff"} {
			classOnly, match := schemas.ClassMatch(c.pattern, s)
			if classOnly != c.classOnly {
				t.Fatalf("%s: read as one class = %v, want %v", c.pattern, classOnly, c.classOnly)
			}
			if want := regexp.MustCompile(c.pattern).MatchString(s); classOnly && match != want {
				t.Errorf("%s on %q: %v, regexp says %v", c.pattern, s, match, want)
			}
		}
	}
}
