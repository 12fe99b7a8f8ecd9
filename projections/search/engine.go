package search

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/orderstream/orderstream/internal/connect"
)

// Engine kinds accepted by NewEngine (and by the --search-engine flag).
const (
	EngineOpenSearch    = "opensearch"
	EngineElasticsearch = "elasticsearch"
)

// Response is an engine's answer to one request: the HTTP status and the
// whole body (JSON). A non-2xx status is not an error of the Engine method;
// callers classify it (see statusError).
type Response struct {
	Status int
	Body   []byte
	// URL is the base URL of the engine that answered (as configured,
	// password redacted; empty with a cloud id), for error messages.
	URL string
}

// OK reports whether the status is 2xx.
func (r Response) OK() bool { return r.Status >= 200 && r.Status < 300 }

// Engine transports the JSON bodies this package builds to one search
// engine. Every method sends exactly one HTTP request, without retries, and
// returns an error only when no HTTP response arrived (connection refused,
// timeout, ctx cancelled); an engine-side failure is a Response with a
// non-2xx Status. Both adapters send the same bodies: Elasticsearch 8/9 and
// OpenSearch 2.x agree on every API used here. Implementations are safe for
// concurrent use.
type Engine interface {
	// Name returns the engine kind, EngineOpenSearch or EngineElasticsearch.
	Name() string
	// Bulk sends an NDJSON body to POST /_bulk (every action names its _index).
	Bulk(ctx context.Context, body []byte) (Response, error)
	// MGet sends POST /<index>/_mget (realtime).
	MGet(ctx context.Context, index string, body []byte) (Response, error)
	// Get sends GET /<index>/_doc/<id> (realtime), index and id escaped as
	// one path segment each.
	Get(ctx context.Context, index, id string) (Response, error)
	// Search sends POST /<index>/_search.
	Search(ctx context.Context, index string, body []byte) (Response, error)
	// PutIndexTemplate sends PUT /_index_template/<name> (composable template).
	PutIndexTemplate(ctx context.Context, name string, body []byte) (Response, error)
	// DeleteIndexTemplate sends DELETE /_index_template/<name>.
	DeleteIndexTemplate(ctx context.Context, name string) (Response, error)
	// CreateIndex sends PUT /<index> with settings/aliases in body (may be nil).
	CreateIndex(ctx context.Context, index string, body []byte) (Response, error)
	// DeleteIndex sends DELETE /<index>.
	DeleteIndex(ctx context.Context, index string) (Response, error)
	// Aliases sends GET /<pattern>/_alias: every index matching pattern
	// (wildcards allowed) with its aliases.
	Aliases(ctx context.Context, pattern string) (Response, error)
	// Indices sends GET /<pattern>: every index matching pattern
	// (wildcards allowed) with its aliases, mappings (their _meta) and
	// settings (index.creation_date).
	Indices(ctx context.Context, pattern string) (Response, error)
	// PutMapping sends PUT /<index>/_mapping (Admin: the _meta of a
	// generation's index).
	PutMapping(ctx context.Context, index string, body []byte) (Response, error)
	// UpdateAliases sends POST /_aliases (one atomic list of actions).
	UpdateAliases(ctx context.Context, body []byte) (Response, error)
	// Refresh sends POST /<index>/_refresh.
	Refresh(ctx context.Context, index string) (Response, error)
}

// EngineConfig selects and reaches a search engine.
type EngineConfig struct {
	// Kind is EngineOpenSearch or EngineElasticsearch. Required.
	Kind string
	// URL is the engine's base URL, e.g. http://127.0.0.1:59200. Required
	// unless CloudID is set. On a cluster, several comma-separated: the
	// client spreads requests over them. Printed only through
	// connect.RedactURL.
	URL string
	// CloudID locates an Elastic Cloud deployment instead of URL
	// (Elasticsearch only).
	CloudID string
	// Username and Password: HTTP basic auth; APIKey: "Authorization:
	// ApiKey <key>". At most one of the two ways.
	Username, Password, APIKey string
	// Transport carries the HTTP requests (TLS settings: internal/connect);
	// nil means http.DefaultTransport.
	Transport http.RoundTripper
}

// Validate reports every problem of c at once.
func (c EngineConfig) Validate() error {
	var errs []error
	switch c.Kind {
	case EngineOpenSearch, EngineElasticsearch:
	case "":
		errs = append(errs, errors.New("search engine kind is empty: want opensearch or elasticsearch"))
	default:
		errs = append(errs, fmt.Errorf("search engine kind %q: want opensearch or elasticsearch", c.Kind))
	}
	switch {
	case c.CloudID != "" && c.Kind != EngineElasticsearch:
		errs = append(errs, fmt.Errorf("a cloud id locates Elasticsearch only, not %s", c.Kind))
	case c.CloudID != "":
	case c.URL == "":
		errs = append(errs, errors.New("search engine URL is empty"))
	default:
		for _, u := range c.urls() {
			if !strings.HasPrefix(u, "http://") && !strings.HasPrefix(u, "https://") {
				errs = append(errs, fmt.Errorf("search engine URL %s: want http:// or https://", connect.RedactURL(u)))
			}
		}
	}
	if c.APIKey != "" && (c.Username != "" || c.Password != "") {
		errs = append(errs, errors.New("search engine: API key and user/password both given: use one"))
	}
	return errors.Join(errs...)
}

// urls returns the comma-separated entries of URL, trimmed.
func (c EngineConfig) urls() []string {
	var out []string
	for _, u := range strings.Split(c.URL, ",") {
		out = append(out, strings.TrimSpace(u))
	}
	return out
}

// NewEngine returns the adapter of cfg.Kind. Neither adapter retries by
// itself: retries are the caller's (the Sink backs off on 429/5xx).
func NewEngine(cfg EngineConfig) (Engine, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Kind == EngineElasticsearch {
		return newElasticsearch(cfg)
	}
	return newOpenSearch(cfg)
}

// EngineError is a non-2xx answer of the engine, with its error type and
// reason when the body has them.
// It implements connect.HTTPStatusError, so that connect.Explain names the
// setting to fix for a 401, a 403 or a proxy's 400 to plain HTTP.
type EngineError struct {
	Op     string // what was asked, e.g. "search orders"
	Status int    // HTTP status
	Type   string // error.type, e.g. "version_conflict_engine_exception"
	Reason string // error.reason
	URL    string // base URL of the engine (Response.URL)
}

var _ connect.HTTPStatusError = (*EngineError)(nil)

// HTTPStatus returns e.Status.
func (e *EngineError) HTTPStatus() int { return e.Status }

// BaseURL returns e.URL.
func (e *EngineError) BaseURL() string { return e.URL }

// FromEngine reports whether the body was the engine's JSON error (it had
// error.type).
func (e *EngineError) FromEngine() bool { return e.Type != "" }

func (e *EngineError) Error() string {
	if e.Type == "" {
		return fmt.Sprintf("%s: HTTP %d", e.Op, e.Status)
	}
	return fmt.Sprintf("%s: HTTP %d %s: %s", e.Op, e.Status, e.Type, e.Reason)
}

// Retryable reports whether sending the same request again may succeed:
// 429 (rejected execution, circuit breaker) and every 5xx.
func (e *EngineError) Retryable() bool { return retryableStatus(e.Status) }

func retryableStatus(s int) bool { return s == http.StatusTooManyRequests || s >= 500 }

// ErrNotFound is returned by Query.Get for an order with no (or a
// soft-deleted) document, and by admin calls for a missing generation.
var ErrNotFound = errors.New("not found")

// check turns a non-2xx response into an *EngineError.
func check(op string, r Response) error {
	if r.OK() {
		return nil
	}
	return errorOf(op, r)
}

func errorOf(op string, r Response) *EngineError {
	e := &EngineError{Op: op, Status: r.Status, URL: r.URL}
	var body struct {
		Error struct {
			Type   string `json:"type"`
			Reason string `json:"reason"`
		} `json:"error"`
	}
	if unmarshal(r.Body, &body) == nil {
		e.Type, e.Reason = body.Error.Type, body.Error.Reason
	}
	if e.Type == "" && len(r.Body) > 0 {
		e.Reason = truncate(string(r.Body), 300)
	}
	return e
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
