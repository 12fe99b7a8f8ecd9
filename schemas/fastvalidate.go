package schemas

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"math/big"
	"regexp/syntax"
	"strconv"
	"sync"
	"unicode/utf8"

	"github.com/go-json-experiment/json/jsontext"
	"github.com/santhosh-tekuri/jsonschema/v6"
)

// fastChecker is a second reading of the same compiled JSON Schemas that the
// Validator holds, for the write side's hot path: it walks the serialized
// event once, token by token (jsontext), checking each value against the
// compiled keywords, without building the map[string]any tree the library
// validates (250 µs and 3,000 allocations for a 21-line order.placed; this
// walk is ~15× faster).
//
// It is only ever trusted to accept: valid reports true only when every
// keyword of every schema met on the way holds. Whenever it is unsure (a
// keyword it does not implement, a number with a fraction or exponent, a
// duplicate member, a payload before its event_type) or finds a violation,
// it answers false and Validate runs the library, whose verdict and message
// stand. So its errors can only cost time, never let an invalid event pass;
// TestFastCheckerAgrees holds it to the library on the real file's events and
// on every single-field mutation of them.
type fastChecker struct {
	version  int64             // the schema_version whose envelope schema this checks
	envelope *fnode            // that version's envelope schema
	payloads map[string]*fnode // key: payloadKey
}

// fnode is one compiled schema, with the keywords the fast path implements.
type fnode struct {
	boolean  *bool  // a true/false schema
	ref      *fnode // $ref, checked beside the other keywords (draft 2020-12)
	types    []string
	enum     []string // every value a string (else the schema is unsupported)
	hasEnum  bool
	constStr *string
	format   func(any) error
	pattern  jsonschema.Regexp
	// class, when the pattern is one character class over the whole string
	// (^[…]*$, as the text definition's ^[^\x00]*$): its ranges (lo, hi
	// pairs, regexp/syntax's Rune); the walk checks each rune against them
	// instead of running the pattern.
	class   []rune
	minLen  int // -1: none
	maxLen  int
	minimum *int64
	maximum *int64
	// object
	props      map[string]*fnode
	required   []string
	additional *bool // nil: any member allowed
	// array
	items              *fnode
	minItems, maxItems int // -1: none
}

// errUnsupported marks a schema that uses a keyword the fast path does not
// implement; such a validator validates with the library only.
var errUnsupported = errors.New("keyword not implemented by the fast path")

// newFastChecker compiles the fast path for the events of schema_version
// version: its envelope schema and the payload schemas, or returns
// errUnsupported.
func newFastChecker(version int, envelope *jsonschema.Schema, payloads map[string]*jsonschema.Schema) (*fastChecker, error) {
	seen := map[*jsonschema.Schema]*fnode{}
	env, err := compileFast(envelope, seen)
	if err != nil {
		return nil, err
	}
	fc := &fastChecker{version: int64(version), envelope: env, payloads: map[string]*fnode{}}
	for k, s := range payloads {
		if fc.payloads[k], err = compileFast(s, seen); err != nil {
			return nil, err
		}
	}
	return fc, nil
}

func compileFast(s *jsonschema.Schema, seen map[*jsonschema.Schema]*fnode) (*fnode, error) {
	if n, ok := seen[s]; ok {
		return n, nil
	}
	n := &fnode{minLen: -1, maxLen: -1, minItems: -1, maxItems: -1}
	seen[s] = n
	if s.Bool != nil {
		n.boolean = s.Bool
		return n, nil
	}
	if s.RecursiveRef != nil || s.DynamicRef != nil || s.Not != nil || s.AllOf != nil || s.AnyOf != nil || s.OneOf != nil ||
		s.If != nil || s.Then != nil || s.Else != nil || s.MaxProperties != nil || s.MinProperties != nil || s.PropertyNames != nil ||
		s.PatternProperties != nil || s.Dependencies != nil || s.DependentRequired != nil || s.DependentSchemas != nil ||
		s.UnevaluatedProperties != nil || s.UniqueItems || s.Contains != nil || s.MinContains != nil || s.MaxContains != nil ||
		s.Items != nil || s.AdditionalItems != nil || s.PrefixItems != nil || s.UnevaluatedItems != nil ||
		s.ContentEncoding != nil || s.ContentMediaType != nil || s.ContentSchema != nil ||
		s.ExclusiveMaximum != nil || s.ExclusiveMinimum != nil || s.MultipleOf != nil || len(s.Extensions) > 0 {
		return nil, errUnsupported
	}
	var err error
	if s.Ref != nil {
		if n.ref, err = compileFast(s.Ref, seen); err != nil {
			return nil, err
		}
	}
	if s.Types != nil {
		n.types = s.Types.ToStrings()
	}
	if s.Enum != nil {
		n.hasEnum = true
		for _, v := range s.Enum.Values {
			str, ok := v.(string)
			if !ok {
				return nil, errUnsupported
			}
			n.enum = append(n.enum, str)
		}
	}
	if s.Const != nil {
		str, ok := (*s.Const).(string)
		if !ok {
			return nil, errUnsupported
		}
		n.constStr = &str
	}
	if s.Format != nil {
		n.format = s.Format.Validate
	}
	n.pattern = s.Pattern
	if s.Pattern != nil {
		n.class = classOnly(s.Pattern.String())
	}
	if s.MinLength != nil {
		n.minLen = *s.MinLength
	}
	if s.MaxLength != nil {
		n.maxLen = *s.MaxLength
	}
	for _, b := range []struct {
		r   *big.Rat
		dst **int64
	}{{s.Minimum, &n.minimum}, {s.Maximum, &n.maximum}} {
		if b.r == nil {
			continue
		}
		if !b.r.IsInt() || !b.r.Num().IsInt64() {
			return nil, errUnsupported
		}
		v := b.r.Num().Int64()
		*b.dst = &v
	}
	if s.Properties != nil {
		n.props = map[string]*fnode{}
		for name, ps := range s.Properties {
			if n.props[name], err = compileFast(ps, seen); err != nil {
				return nil, err
			}
		}
	}
	n.required = s.Required
	switch a := s.AdditionalProperties.(type) {
	case nil:
	case bool:
		n.additional = &a
	default:
		return nil, errUnsupported
	}
	if s.Items2020 != nil {
		if n.items, err = compileFast(s.Items2020, seen); err != nil {
			return nil, err
		}
	}
	if s.MinItems != nil {
		n.minItems = *s.MinItems
	}
	if s.MaxItems != nil {
		n.maxItems = *s.MaxItems
	}
	return n, nil
}

// chain returns n and the schemas its $ref chain adds, every one of which a
// value must satisfy.
func (n *fnode) chain(dst []*fnode) []*fnode {
	for ; n != nil; n = n.ref {
		dst = append(dst, n)
	}
	return dst
}

var walkers = sync.Pool{New: func() any {
	return &walker{dec: jsontext.NewDecoder(bytes.NewReader(nil)), passed: map[*fnode]map[string]struct{}{}}
}}

// valid reports whether event is of fc's schema_version and certainly
// satisfies its envelope schema and its payload's schema (see
// fastChecker). Safe for concurrent use.
func (fc *fastChecker) valid(event []byte) bool {
	w := walkers.Get().(*walker)
	defer walkers.Put(w)
	w.fc, w.eventType, w.schemaVersion, w.payloadChecked = fc, "", 0, false
	w.dec.Reset(bytes.NewReader(event))
	if !w.value(fc.envelope.chain(nil), roleEnvelope) {
		return false
	}
	_, err := w.dec.ReadToken()
	return errors.Is(err, io.EOF) && w.payloadChecked && w.schemaVersion == fc.version
}

// role marks the envelope members the walker must remember.
type role int

const (
	roleNone role = iota
	roleEnvelope
	roleSchemaVersion
)

type walker struct {
	fc  *fastChecker
	dec *jsontext.Decoder
	buf []byte
	// envelope members seen before the payload
	eventType      string
	schemaVersion  int64
	payloadChecked bool
	// passed remembers, per node, strings that met its pattern and format
	// (most repeat: times, prices, currencies, product texts); cleared at
	// maxPassed entries in all (npassed). Looking a string up by its bytes
	// allocates nothing.
	passed  map[*fnode]map[string]struct{}
	npassed int
}

const maxPassed = 1 << 12

func hasType(types []string, t string) bool {
	for _, x := range types {
		if x == t {
			return true
		}
	}
	return false
}

// value checks the next JSON value against every schema of ns. At the
// envelope's top level (top), it picks the payload's schema by the
// event_type and schema_version read before it.
func (w *walker) value(ns []*fnode, r role) bool {
	for _, n := range ns {
		if n.boolean != nil && !*n.boolean {
			return false
		}
	}
	switch w.dec.PeekKind() {
	case '{':
		return w.object(ns, r == roleEnvelope)
	case '[':
		return w.array(ns)
	case '"':
		raw, err := w.dec.ReadValue()
		if err != nil {
			return false
		}
		b, ok := w.unquote(raw)
		return ok && w.str(ns, b)
	case '0':
		raw, err := w.dec.ReadValue()
		if err != nil {
			return false
		}
		v, err := strconv.ParseInt(string(raw), 10, 64)
		if err != nil {
			return false // fraction, exponent or beyond int64: let the library decide
		}
		for _, n := range ns {
			if (n.types != nil && !hasType(n.types, "integer") && !hasType(n.types, "number")) || n.hasEnum || n.constStr != nil ||
				(n.minimum != nil && v < *n.minimum) || (n.maximum != nil && v > *n.maximum) {
				return false
			}
		}
		if r == roleSchemaVersion {
			w.schemaVersion = v
		}
		return true
	}
	return false // null, true, false: no event member takes one
}

// unquote returns the content of the JSON string raw, unescaped; it is
// valid until the next read of the decoder.
func (w *walker) unquote(raw jsontext.Value) ([]byte, bool) {
	inner := raw[1 : len(raw)-1]
	if bytes.IndexByte(inner, '\\') < 0 {
		return inner, true
	}
	var err error
	w.buf, err = jsontext.AppendUnquote(w.buf[:0], raw)
	return w.buf, err == nil
}

// str checks the string b against every schema of ns. It allocates only to
// check and remember a string not met before.
func (w *walker) str(ns []*fnode, b []byte) bool {
	var runes = -1
	for _, n := range ns {
		if n.types != nil && !hasType(n.types, "string") {
			return false
		}
		if n.constStr != nil && string(b) != *n.constStr {
			return false
		}
		if n.hasEnum {
			found := false
			for _, e := range n.enum {
				found = found || e == string(b)
			}
			if !found {
				return false
			}
		}
		if n.minLen >= 0 || n.maxLen >= 0 {
			if runes < 0 {
				runes = utf8.RuneCount(b)
			}
			if (n.minLen >= 0 && runes < n.minLen) || (n.maxLen >= 0 && runes > n.maxLen) {
				return false
			}
		}
		if n.class != nil && n.format == nil {
			if !inClass(n.class, b) {
				return false
			}
			continue
		}
		if n.pattern == nil && n.format == nil {
			continue
		}
		if _, ok := w.passed[n][string(b)]; ok {
			continue
		}
		s := string(b)
		if n.pattern != nil && !n.pattern.MatchString(s) {
			return false
		}
		if n.format != nil && n.format(s) != nil {
			return false
		}
		if w.npassed >= maxPassed {
			for _, m := range w.passed {
				clear(m)
			}
			w.npassed = 0
		}
		m := w.passed[n]
		if m == nil {
			m = map[string]struct{}{}
			w.passed[n] = m
		}
		m[s] = struct{}{}
		w.npassed++
	}
	return true
}

// classOnly returns the character class of a pattern that is that class
// repeated over the whole string, ^[…]*$, as ranges (lo, hi pairs); nil for
// any other pattern. The pattern is read with Go's RE2 syntax, the one the
// schema library compiles patterns with (regexp.Compile: $ matches only at
// the end of the text).
func classOnly(pattern string) []rune {
	re, err := syntax.Parse(pattern, syntax.Perl)
	if err != nil {
		return nil
	}
	re = re.Simplify()
	if re.Op != syntax.OpConcat || len(re.Sub) != 3 || re.Sub[0].Op != syntax.OpBeginText ||
		re.Sub[2].Op != syntax.OpEndText || re.Sub[1].Op != syntax.OpStar || re.Sub[1].Sub[0].Op != syntax.OpCharClass {
		return nil
	}
	return re.Sub[1].Sub[0].Rune
}

// inClass reports whether every rune of b lies in ranges (lo, hi pairs).
// An invalid UTF-8 sequence reads as U+FFFD, as it does for regexp.
func inClass(ranges []rune, b []byte) bool {
	for len(b) > 0 {
		r, size := rune(b[0]), 1
		if r >= utf8.RuneSelf {
			r, size = utf8.DecodeRune(b)
		}
		b = b[size:]
		in := false
		for i := 0; i < len(ranges) && !in; i += 2 {
			in = ranges[i] <= r && r <= ranges[i+1]
		}
		if !in {
			return false
		}
	}
	return true
}

func (w *walker) object(ns []*fnode, top bool) bool {
	var shape *fnode // the one schema of the chain that describes members
	for _, n := range ns {
		if n.types != nil && !hasType(n.types, "object") || n.hasEnum || n.constStr != nil {
			return false
		}
		if n.props != nil || n.required != nil || n.additional != nil {
			if shape != nil {
				return false // two member lists to merge: let the library do it
			}
			shape = n
		}
	}
	if _, err := w.dec.ReadToken(); err != nil {
		return false
	}
	var seen uint64
	if shape != nil && len(shape.required) > 64 {
		return false
	}
	var sub []*fnode
	for w.dec.PeekKind() != '}' {
		raw, err := w.dec.ReadValue()
		if err != nil {
			return false
		}
		nb, ok := w.unquote(raw) // valid until the member's value is read
		if !ok {
			return false
		}
		sub = sub[:0]
		if shape != nil {
			p, ok := shape.props[string(nb)]
			if !ok && shape.additional != nil && !*shape.additional {
				return false
			}
			if ok {
				sub = p.chain(sub)
			}
			for i, r := range shape.required {
				if r == string(nb) {
					seen |= 1 << i
				}
			}
		}
		if top && string(nb) == "payload" {
			p, ok := w.fc.payloads[w.eventType+"@"+strconv.FormatInt(w.schemaVersion, 10)]
			if !ok || w.eventType == "" {
				return false // unknown or not yet named: the library decides
			}
			sub = p.chain(sub)
			w.payloadChecked = true
		}
		if top && string(nb) == "event_type" && w.dec.PeekKind() == '"' {
			raw, err := w.dec.ReadValue()
			if err != nil {
				return false
			}
			b, ok := w.unquote(raw)
			if !ok || !w.str(sub, b) {
				return false
			}
			w.eventType = string(b)
			continue
		}
		if len(sub) == 0 {
			if err := w.dec.SkipValue(); err != nil {
				return false
			}
			continue
		}
		sr := roleNone
		if top && string(nb) == "schema_version" {
			sr = roleSchemaVersion
		}
		if !w.value(sub, sr) {
			return false
		}
	}
	if _, err := w.dec.ReadToken(); err != nil {
		return false
	}
	return shape == nil || seen == (uint64(1)<<len(shape.required))-1
}

func (w *walker) array(ns []*fnode) bool {
	var items *fnode
	minItems, maxItems := -1, -1
	for _, n := range ns {
		if n.types != nil && !hasType(n.types, "array") || n.hasEnum || n.constStr != nil {
			return false
		}
		if n.items != nil {
			if items != nil {
				return false
			}
			items = n.items
		}
		minItems = max(minItems, n.minItems)
		if n.maxItems >= 0 && (maxItems < 0 || n.maxItems < maxItems) {
			maxItems = n.maxItems
		}
	}
	if _, err := w.dec.ReadToken(); err != nil {
		return false
	}
	var chain []*fnode
	if items != nil {
		chain = items.chain(nil)
	}
	count := 0
	for w.dec.PeekKind() != ']' {
		count++
		if chain == nil {
			if err := w.dec.SkipValue(); err != nil {
				return false
			}
			continue
		}
		if !w.value(chain, roleNone) {
			return false
		}
	}
	if _, err := w.dec.ReadToken(); err != nil {
		return false
	}
	return (minItems < 0 || count >= minItems) && (maxItems < 0 || count <= maxItems)
}

// payloadTail is how encoding/json ends an envelope whose payload (its last
// field) is nil.
var payloadTail = []byte(`"payload":null}`)

// marshalEnvelope is json.Marshal(e) without the second pass encoding/json
// makes over a json.RawMessage (it re-scans and compacts the payload, 4.7 KB
// for a 21-line order.placed): e.Payload is copied in as it is (NewEnvelope
// makes it compact). appendEnvelope writes the envelope around it; when it
// cannot, the envelope is encoded by encoding/json with a nil payload and
// e.Payload spliced in, and an envelope whose payload is not its last member
// takes json.Marshal. Whether the payload is JSON at all is left to the
// validation that follows in Marshal.
func marshalEnvelope(e Envelope) ([]byte, error) {
	payload := e.Payload
	if len(payload) == 0 {
		return json.Marshal(e)
	}
	if b, ok := appendEnvelope(make([]byte, 0, 400+len(payload)), &e); ok {
		return b, nil
	}
	e.Payload = nil
	b, err := json.Marshal(e)
	if err != nil || !bytes.HasSuffix(b, payloadTail) {
		e.Payload = payload
		return json.Marshal(e)
	}
	out := make([]byte, 0, len(b)-len("null}")+len(payload)+1)
	out = append(out, b[:len(b)-len("null}")]...)
	out = append(out, payload...)
	return append(out, '}'), nil
}
