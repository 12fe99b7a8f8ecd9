package api

import (
	"encoding/json"
	"testing"
)

// TestAmountReadsTheDocumentedForm: a request's decimal string is read only
// in the form openapi.json states (^-?[0-9]+(\.[0-9]+)?$); anything else
// is kept for Invalid, which names it.
func TestAmountReadsTheDocumentedForm(t *testing.T) {
	t.Parallel()
	for in, ok := range map[string]bool{
		`"2.55"`: true, `"-0.100"`: true, `"20"`: true, `"9747747.934"`: true,
		`"1e-2"`: false, `"1E+2"`: false, `".5"`: false, `"5."`: false, `"+2.50"`: false, `" 2.5"`: false,
		`"NaN"`: false, `""`: false, `2.55`: false, `null`: false,
	} {
		var a Amount
		if err := json.Unmarshal([]byte(in), &a); err != nil {
			t.Fatalf("%s: %v", in, err)
		}
		if got := a.Invalid() == nil; got != ok {
			t.Errorf("%s: valid %v (%v), want %v", in, got, a.Invalid(), ok)
		}
	}
}
