package api

import (
	"encoding/json"
	"fmt"
	"net/http"
)

// Problem is an RFC 9457 problem details object. Type is "about:blank"
// unless a more specific URI applies; Detail is written for a person and
// names the input at fault.
type Problem struct {
	Type     string `json:"type"`
	Title    string `json:"title"`
	Status   int    `json:"status"`
	Detail   string `json:"detail,omitempty"`
	Instance string `json:"instance,omitempty"`
	// InvalidParams lists every rejected query parameter (an RFC 9457
	// extension member, as in the RFC's own example).
	InvalidParams []InvalidParam `json:"invalid_params,omitempty"`
	// Rule names the rule a command broke (order-cancelled,
	// version-mismatch …; the end of Type): an extension member.
	Rule string `json:"rule,omitempty"`
	// CurrentVersion is the order's version when If-Match named another
	// (412), or the version a read model applied when it did not reach a
	// consistency token in time (503): an extension member.
	CurrentVersion int64 `json:"current_version,omitempty"`
}

// InvalidParam names one rejected parameter and why.
type InvalidParam struct {
	Name   string `json:"name"`
	Reason string `json:"reason"`
}

// paramError is a rejected request parameter; handlers collect them and
// answer 400 with all of them at once.
type paramError struct {
	name   string
	reason string
}

func (e *paramError) Error() string { return e.name + ": " + e.reason }

func badParam(name, format string, args ...any) *paramError {
	return &paramError{name: name, reason: fmt.Sprintf(format, args...)}
}

// writeProblem answers with p as application/problem+json.
func writeProblem(w http.ResponseWriter, r *http.Request, p Problem) {
	if p.Type == "" {
		p.Type = "about:blank"
	}
	if p.Title == "" {
		p.Title = http.StatusText(p.Status)
	}
	if r != nil && p.Instance == "" {
		p.Instance = r.URL.Path
	}
	w.Header().Set("Content-Type", "application/problem+json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(p.Status)
	_ = json.NewEncoder(w).Encode(p)
}

// writeBadParams answers 400 naming every parameter in errs.
func writeBadParams(w http.ResponseWriter, r *http.Request, errs []*paramError) {
	p := Problem{Status: http.StatusBadRequest, Title: "Invalid request parameter"}
	for i, e := range errs {
		if i > 0 {
			p.Detail += "; "
		}
		p.Detail += e.Error()
		p.InvalidParams = append(p.InvalidParams, InvalidParam{Name: e.name, Reason: e.reason})
	}
	writeProblem(w, r, p)
}

// writeJSON answers 200 with v as JSON.
func writeJSON(w http.ResponseWriter, v any) { writeJSONStatus(w, http.StatusOK, v) }

// writeJSONStatus writes v as JSON with HTTP status code.
func writeJSONStatus(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(true)
	_ = enc.Encode(v)
}
