package search

import (
	"bytes"
	"encoding/json"
	"testing"
)

// TestBulkActionLineIsJSON: the action line of a bulk item is JSON for
// any order id the envelope decoder lets through (control characters,
// DEL, quotes, non-ASCII), with the id unchanged. Go-quoted, "\x01" or
// "\a" made the whole bulk request unparsable for the engine.
func TestBulkActionLineIsJSON(t *testing.T) {
	t.Parallel()
	for _, id := range []string{"plain-1", "ctl\x01id", "del\x7fid", "bell\aid", "quote\"back\\slash", "é–\u2028x", "tab\tnl\n"} {
		b := item{index: "orders_v1", id: id, version: 3, source: []byte(`{}`)}.appendTo(nil)
		line, _, _ := bytes.Cut(b, []byte("\n"))
		var action struct {
			Index struct {
				Index string `json:"_index"`
				ID    string `json:"_id"`
			} `json:"index"`
		}
		if err := json.Unmarshal(line, &action); err != nil {
			t.Errorf("id %q: action line %s is not JSON: %v", id, line, err)
			continue
		}
		if action.Index.ID != id || action.Index.Index != "orders_v1" {
			t.Errorf("id %q: action line %s decodes to %+v", id, line, action.Index)
		}
	}
}
