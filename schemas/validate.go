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

//go:embed v1/*.json
var files embed.FS

const schemaBase = "https://orderstream.dev/schemas/"

// Validator checks serialized events against the embedded JSON Schema files
// (draft 2020-12, formats asserted). It is safe for concurrent use.
type Validator struct {
	envelope *jsonschema.Schema
	payloads map[string]*jsonschema.Schema // key: "<event_type>@<schema_version>"
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
	v := &Validator{payloads: map[string]*jsonschema.Schema{}}
	for _, p := range names {
		sch, err := c.Compile(schemaBase + p)
		if err != nil {
			return nil, fmt.Errorf("compile schema %s: %w", p, err)
		}
		dir, base := path.Split(p)
		name := strings.TrimSuffix(base, ".json")
		switch {
		case name == "envelope":
			v.envelope = sch
		case strings.HasPrefix(name, "order."):
			var version int
			if _, err := fmt.Sscanf(dir, "v%d/", &version); err != nil {
				return nil, fmt.Errorf("schema %s: version directory: %w", p, err)
			}
			v.payloads[payloadKey(name, version)] = sch
		}
	}
	if v.envelope == nil {
		return nil, fmt.Errorf("load schemas: envelope.json missing")
	}
	return v, nil
}

func payloadKey(eventType string, version int) string {
	return fmt.Sprintf("%s@%d", eventType, version)
}

// Validate checks one serialized envelope and its payload. The error wraps
// ErrInvalidEvent (or ErrUnknownEvent) and names the failing JSON pointer.
func (v *Validator) Validate(event []byte) error {
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(event))
	if err != nil {
		return fmt.Errorf("%w: not JSON: %v", ErrInvalidEvent, err)
	}
	if err := v.envelope.Validate(inst); err != nil {
		return fmt.Errorf("%w: envelope: %v", ErrInvalidEvent, err)
	}
	// The envelope schema made both present and typed.
	m := inst.(map[string]any)
	eventType, _ := m["event_type"].(string)
	num, _ := m["schema_version"].(json.Number)
	version, _ := num.Int64()
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
	b, err := json.Marshal(e)
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
