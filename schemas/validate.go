package schemas

import (
	"bytes"
	"embed"
	"encoding/json"
	"fmt"
	"io/fs"
	"path"
	"strings"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

//go:embed v1/*.json v2/*.json
var files embed.FS

// Files returns the embedded JSON Schema files of every version, as
// v<N>/<name>.json (envelope.json, defs.json, <event type>.json). They are
// what Validator checks against and what `orderstream schemas show` prints.
func Files() fs.FS { return files }

const schemaBase = "https://orderstream.dev/schemas/"

// Validator checks serialized events against the embedded JSON Schema files
// (draft 2020-12, formats asserted). It is safe for concurrent use.
type Validator struct {
	envelopes map[int]*jsonschema.Schema    // key: schema_version
	payloads  map[string]*jsonschema.Schema // key: "<event_type>@<schema_version>"
	fast      []*fastChecker                // one per schema_version, newest first; nil: the library checks every event
}

// NewValidator compiles every embedded schema. It fails only if a schema file
// is broken, which the package tests rule out.
func NewValidator() (*Validator, error) {
	c := jsonschema.NewCompiler()
	c.AssertFormat()
	var names []string
	err := fs.WalkDir(files, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := files.ReadFile(p)
		if err != nil {
			return err
		}
		doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
		if err != nil {
			return fmt.Errorf("schema %s: %w", p, err)
		}
		if err := c.AddResource(schemaBase+p, doc); err != nil {
			return fmt.Errorf("schema %s: %w", p, err)
		}
		names = append(names, p)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("load schemas: %w", err)
	}
	v := &Validator{envelopes: map[int]*jsonschema.Schema{}, payloads: map[string]*jsonschema.Schema{}}
	for _, p := range names {
		sch, err := c.Compile(schemaBase + p)
		if err != nil {
			return nil, fmt.Errorf("compile schema %s: %w", p, err)
		}
		dir, base := path.Split(p)
		name := strings.TrimSuffix(base, ".json")
		var version int
		if _, err := fmt.Sscanf(dir, "v%d/", &version); err != nil {
			return nil, fmt.Errorf("schema %s: version directory: %w", p, err)
		}
		switch {
		case name == "envelope":
			v.envelopes[version] = sch
		case strings.HasPrefix(name, "order."):
			v.payloads[payloadKey(name, version)] = sch
		}
	}
	for version := OldestVersion; version <= CurrentVersion; version++ {
		if v.envelopes[version] == nil {
			return nil, fmt.Errorf("load schemas: v%d/envelope.json missing", version)
		}
	}
	for version := CurrentVersion; version >= OldestVersion; version-- {
		fc, err := newFastChecker(version, v.envelopes[version], v.payloads)
		if err != nil {
			v.fast = nil // a keyword the fast path lacks: the library checks every event
			break
		}
		v.fast = append(v.fast, fc)
	}
	return v, nil
}

func payloadKey(eventType string, version int) string {
	return fmt.Sprintf("%s@%d", eventType, version)
}

// Validate checks one serialized envelope and its payload against the
// schemas of its schema_version (any version this build knows, 1 to
// CurrentVersion). The error wraps ErrInvalidEvent (or ErrUnknownEvent) and
// names the failing JSON pointer.
//
// Events a fast path (fastvalidate.go) accepts are valid without further
// work; the others are validated by the library, whose verdict stands.
func (v *Validator) Validate(event []byte) error {
	for _, fc := range v.fast {
		if fc.valid(event) {
			return nil
		}
	}
	return v.validateLibrary(event)
}

// validateLibrary validates event with the JSON Schema library alone.
func (v *Validator) validateLibrary(event []byte) error {
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(event))
	if err != nil {
		return fmt.Errorf("%w: not JSON: %v", ErrInvalidEvent, err)
	}
	m, _ := inst.(map[string]any)
	num, _ := m["schema_version"].(json.Number)
	version, _ := num.Int64()
	env, ok := v.envelopes[int(version)]
	if !ok {
		env = v.envelopes[CurrentVersion] // it names what is wrong with the envelope, or the version below
	}
	if err := env.Validate(inst); err != nil {
		return fmt.Errorf("%w: envelope: %v", ErrInvalidEvent, err)
	}
	// The envelope schema made both present and typed.
	eventType, _ := m["event_type"].(string)
	sch, ok := v.payloads[payloadKey(eventType, int(version))]
	if !ok {
		return fmt.Errorf("%w: %s v%d", ErrUnknownEvent, eventType, version)
	}
	if err := sch.Validate(m["payload"]); err != nil {
		return fmt.Errorf("%w: %s v%d payload: %v", ErrInvalidEvent, eventType, version, err)
	}
	return nil
}

// Marshal serializes e and validates the result; it is how the write side
// turns an envelope into outbox bytes. An event of more than MaxEventBytes
// is refused with an error wrapping ErrInvalidEvent and ErrOutOfRange.
func (v *Validator) Marshal(e Envelope) ([]byte, error) {
	b, err := marshalEnvelope(e)
	if err != nil {
		return nil, fmt.Errorf("encode event %s: %w", e.EventID, err)
	}
	if len(b) > MaxEventBytes {
		return nil, fmt.Errorf("event %s (%s of %s v%d): %w: %d bytes, more than %d (schemas.MaxEventBytes): %w",
			e.EventID, e.EventType, e.AggregateID, e.AggregateVersion, ErrInvalidEvent, len(b), MaxEventBytes, ErrOutOfRange)
	}
	if err := v.Validate(b); err != nil {
		return nil, fmt.Errorf("event %s (%s of %s v%d): %w", e.EventID, e.EventType, e.AggregateID, e.AggregateVersion, err)
	}
	return b, nil
}
