package search

import (
	"bytes"
	"encoding/json"
)

// unmarshal decodes b into v keeping JSON numbers exact (json.Number) where
// v has interface values.
func unmarshal(b []byte, v any) error {
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	return d.Decode(v)
}
