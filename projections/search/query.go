package search

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"strings"
	"time"

	"github.com/orderstream/orderstream/schemas"
)

// Sort orders of Request.Sort. Every order ends with a tiebreaker on the
// order id, so pages never overlap or skip.
type Sort string

const (
	// SortRelevance: best text match first (the default when Text is set).
	SortRelevance Sort = "relevance"
	// SortDate: newest placed_at first (the default without Text).
	SortDate Sort = "date"
	// SortTotal: largest total first (credit notes, negative, last).
	SortTotal Sort = "total"
)

// Size limits of Request.Size.
const (
	DefaultSize = 20
	MaxSize     = 100
)

// FacetSize is the number of buckets asked for per facet: more than the 38
// countries of the data set, so every country is counted.
const FacetSize = 250

// ErrInvalidRequest wraps every error about a Request's fields (an API
// answers it with 400).
var ErrInvalidRequest = errors.New("invalid search request")

// RequestError is a bad field of a Request (or an unknown Country); it
// wraps ErrInvalidRequest. Field is the Request field in lower case: size,
// sort, kind, status, channel, from, to, after or country.
type RequestError struct {
	Field  string
	Reason string
}

// Error returns "invalid search request: " and the reason.
func (e *RequestError) Error() string { return ErrInvalidRequest.Error() + ": " + e.Reason }

// Unwrap returns ErrInvalidRequest.
func (e *RequestError) Unwrap() error { return ErrInvalidRequest }

func reqErr(field, format string, args ...any) *RequestError {
	return &RequestError{Field: field, Reason: fmt.Sprintf(format, args...)}
}

// Request is one search. Every field is optional; filters combine with AND.
type Request struct {
	// Text is searched in the product descriptions of the order's lines and
	// in the order number (an exact order number ranks first). Documents
	// with every word rank above documents with some.
	Text string
	// Product keeps orders with a line of exactly this stock code
	// ("85123A"; case-sensitive, as in the source).
	Product string
	// Country, Customer, Kind and Status keep orders with exactly this
	// value (Kind: sale, credit_note, adjustment; Status: placed, paid,
	// shipped, cancelled, refunded).
	Country  string
	Customer string
	Kind     string
	Status   string
	// Channel keeps orders of this sales channel: web, phone, marketplace,
	// store, or "unknown" (schemas.ChannelUnknown) for orders that do not
	// say (every v1 event, every order of the Online Retail file).
	Channel string
	// From and To bound placed_at: From ≤ placed_at < To. Zero = unbounded.
	From, To time.Time
	// Sort: "" means SortRelevance when Text is set, else SortDate.
	Sort Sort
	// After is the Next cursor of the previous page of the same request.
	After string
	// Size is the page size: default 20 (when 0), at most 100.
	Size int
}

// Bucket is one facet value and the number of matching orders that have it.
type Bucket struct {
	Key   string `json:"key"`
	Count int64  `json:"count"`
}

// Facets count the orders matching the request (all pages) per value.
// Channel counts orders without a channel under "unknown".
type Facets struct {
	Country []Bucket `json:"country"`
	Channel []Bucket `json:"channel"`
	Kind    []Bucket `json:"kind"`
	Status  []Bucket `json:"status"`
}

// Result is one page of a search.
type Result struct {
	// Total is the number of matching orders (exact).
	Total int64
	// Hits are this page's orders, with their lines; MatchedLines is set.
	Hits []Order
	// Facets are computed over every matching order.
	Facets Facets
	// Next is the cursor of the next page, "" on the last page.
	Next string
}

// Query answers searches and order lookups from the serving generation
// (the read alias). Safe for concurrent use.
type Query struct {
	eng   Engine
	names Names
}

// NewQuery returns a Query for cfg's read model. It sends no request.
func NewQuery(cfg Config) (*Query, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Query{eng: cfg.Engine, names: cfg.Names()}, nil
}

// Ping returns nil when the engine answers and the read alias (the
// serving generation) exists: one GET /<alias>/_alias. Errors: an
// *EngineError (404 when no generation serves yet) or the transport's.
func (q *Query) Ping(ctx context.Context) error {
	r, err := q.eng.Aliases(ctx, q.names.ReadAlias())
	if err != nil {
		return fmt.Errorf("ping search engine: %w", err)
	}
	return check("read alias "+q.names.ReadAlias(), r)
}

// Get returns the order with id orderID from the serving generation or,
// when no order has that id, the order whose order number is orderID
// (case-insensitive, e.g. "581538" or "c536379"); an error wrapping
// ErrNotFound when there is none or it is soft-deleted. orderID reaches the
// engine as one escaped URL path segment (Engine.Get) or inside a query
// body, whatever it contains.
func (q *Query) Get(ctx context.Context, orderID string) (Order, error) {
	if orderID == "" {
		return Order{}, fmt.Errorf("%w: order id is empty", ErrInvalidRequest)
	}
	o, err := q.getByID(ctx, orderID)
	if !errors.Is(err, ErrNotFound) {
		return o, err
	}
	return q.getByNumber(ctx, orderID)
}

// numberVariants bounds the orders getByNumber reads for one number: the
// field is case-insensitive, the write side's uniqueness is not, so
// "c536379" and "C536379" can both exist.
const numberVariants = 16

// getByNumber returns the live order whose order number is number: the one
// spelt exactly so when there is one, else one that differs only in case.
func (q *Query) getByNumber(ctx context.Context, number string) (Order, error) {
	body, err := json.Marshal(map[string]any{
		"size": numberVariants,
		"query": obj("bool", map[string]any{
			"filter":   []any{obj("term", obj("order_number", number))},
			"must_not": []any{obj("term", obj("deleted", true))},
		}),
	})
	if err != nil {
		return Order{}, fmt.Errorf("encode order number query: %w", err)
	}
	r, err := q.eng.Search(ctx, q.names.ReadAlias(), body)
	if err != nil {
		return Order{}, fmt.Errorf("get order number %s: %w", number, err)
	}
	if err := check("get order number "+number, r); err != nil {
		return Order{}, err
	}
	res, err := parseResult(r.Body, numberVariants, SortDate)
	if err != nil {
		return Order{}, err
	}
	if len(res.Hits) == 0 {
		return Order{}, fmt.Errorf("order %s: %w", number, ErrNotFound)
	}
	for _, o := range res.Hits {
		if o.OrderNumber == number {
			return o, nil
		}
	}
	return res.Hits[0], nil
}

func (q *Query) getByID(ctx context.Context, orderID string) (Order, error) {
	r, err := q.eng.Get(ctx, q.names.ReadAlias(), orderID)
	if err != nil {
		return Order{}, fmt.Errorf("get order %s: %w", orderID, err)
	}
	if r.Status == http.StatusNotFound {
		return Order{}, fmt.Errorf("order %s: %w", orderID, ErrNotFound)
	}
	if err := check("get order "+orderID, r); err != nil {
		return Order{}, err
	}
	var doc struct {
		Found  bool  `json:"found"`
		Source Order `json:"_source"`
	}
	if err := json.Unmarshal(r.Body, &doc); err != nil {
		return Order{}, fmt.Errorf("get order %s: decode: %w", orderID, err)
	}
	if !doc.Found || doc.Source.Deleted {
		return Order{}, fmt.Errorf("order %s: %w", orderID, ErrNotFound)
	}
	return doc.Source, nil
}

// Search runs req against the serving generation. Errors: a *RequestError
// (wrapping ErrInvalidRequest) for a bad field or cursor, or for a Country
// that no order has (checked with one more request, only when a search
// with a Country filter has no hit), *EngineError for an engine refusal,
// or the transport's error when the engine does not answer.
func (q *Query) Search(ctx context.Context, req Request) (Result, error) {
	body, size, err := searchBody(req)
	if err != nil {
		return Result{}, err
	}
	r, err := q.eng.Search(ctx, q.names.ReadAlias(), body)
	if err != nil {
		return Result{}, fmt.Errorf("search %s: %w", q.names.ReadAlias(), err)
	}
	if err := check("search "+q.names.ReadAlias(), r); err != nil {
		return Result{}, err
	}
	res, err := parseResult(r.Body, size, req.sort())
	if err != nil || res.Total > 0 || req.Country == "" {
		return res, err
	}
	// No hit with a country filter: a misspelt country is the usual cause.
	if err := q.checkCountry(ctx, req.Country); err != nil {
		return Result{}, err
	}
	return res, nil
}

// checkCountry returns a *RequestError for country when no live order has
// it (one size-0 aggregation over the whole read model).
func (q *Query) checkCountry(ctx context.Context, country string) error {
	body, err := json.Marshal(map[string]any{
		"size":  0,
		"query": obj("bool", obj("must_not", []any{obj("term", obj("deleted", true))})),
		"aggs":  obj("country", obj("terms", map[string]any{"field": "country", "size": FacetSize})),
	})
	if err != nil {
		return fmt.Errorf("encode country facet: %w", err)
	}
	r, err := q.eng.Search(ctx, q.names.ReadAlias(), body)
	if err != nil {
		return fmt.Errorf("country facet %s: %w", q.names.ReadAlias(), err)
	}
	if err := check("country facet "+q.names.ReadAlias(), r); err != nil {
		return err
	}
	res, err := parseResult(r.Body, 0, SortDate)
	if err != nil {
		return err
	}
	if len(res.Facets.Country) == 0 {
		return nil // an empty read model: nothing to compare with
	}
	hint := ""
	for _, b := range res.Facets.Country {
		if b.Key == country {
			return nil
		}
		if strings.EqualFold(b.Key, country) {
			hint = fmt.Sprintf(" (did you mean %q?)", b.Key)
		}
	}
	return reqErr("country", "country %q is in no order%s; countries are as in the data, case-sensitive, e.g. \"France\", \"EIRE\", \"United Kingdom\"", country, hint)
}

func (r Request) sort() Sort {
	if r.Sort != "" {
		return r.Sort
	}
	if strings.TrimSpace(r.Text) != "" {
		return SortRelevance
	}
	return SortDate
}

// cursor is the decoded form of Result.Next: the sort order it belongs to
// and the engine's sort values of the last hit, kept verbatim.
type cursor struct {
	Sort   Sort              `json:"s"`
	Values []json.RawMessage `json:"v"`
}

func encodeCursor(c cursor) string {
	b, _ := json.Marshal(c)
	return base64.RawURLEncoding.EncodeToString(b)
}

func decodeCursor(s string, want Sort) ([]json.RawMessage, error) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	var c cursor
	if err == nil {
		err = json.Unmarshal(b, &c)
	}
	if err != nil || len(c.Values) != 2 {
		return nil, reqErr("after", "cursor %q is not a Next value of this API", s)
	}
	if c.Sort != want {
		return nil, reqErr("after", "cursor was made for sort %q, the request sorts by %q", c.Sort, want)
	}
	if !validSortValues(c.Sort, c.Values) {
		return nil, reqErr("after", "cursor %q is not a Next value of this API", s)
	}
	return c.Values, nil
}

// validSortValues reports whether v has the shape of the sort values the
// engine returns for sort: a number (an integer for date, epoch ms of
// placed_at, and for total, total_milli; a score for relevance), then the
// order id, a string. Anything else would reach the engine as search_after
// and come back as a server-side failure instead of the caller's mistake.
func validSortValues(sort Sort, v []json.RawMessage) bool {
	var n json.Number
	var id string
	num := bytes.TrimSpace(v[0])
	if len(num) == 0 || (num[0] != '-' && (num[0] < '0' || num[0] > '9')) || // not a JSON string
		json.Unmarshal(num, &n) != nil || json.Unmarshal(v[1], &id) != nil || len(id) > 64 {
		return false
	}
	if sort == SortRelevance {
		f, err := n.Float64()
		return err == nil && !math.IsInf(f, 0) && !math.IsNaN(f)
	}
	_, err := n.Int64()
	return err == nil
}

// searchBody builds the search JSON of req (shared by both engines) and
// returns it with the page size.
func searchBody(req Request) ([]byte, int, error) {
	var errs []error
	size := req.Size
	switch {
	case size == 0:
		size = DefaultSize
	case size < 0 || size > MaxSize:
		errs = append(errs, reqErr("size", "size %d: want 1..%d", size, MaxSize))
	}
	sort := req.sort()
	text := strings.TrimSpace(req.Text)
	var sortJSON []any
	switch sort {
	case SortRelevance:
		if text == "" {
			errs = append(errs, reqErr("sort", "sort %q needs a text", sort))
		}
		sortJSON = []any{obj("_score", "desc"), obj("order_id", "asc")}
	case SortDate:
		sortJSON = []any{obj("placed_at", "desc"), obj("order_id", "desc")}
	case SortTotal:
		sortJSON = []any{obj("total_milli", "desc"), obj("order_id", "desc")}
	default:
		errs = append(errs, reqErr("sort", "sort %q: want date, total or relevance", req.Sort))
	}
	if req.Kind != "" && !schemas.Kind(req.Kind).Valid() {
		errs = append(errs, reqErr("kind", "kind %q: want sale, credit_note or adjustment", req.Kind))
	}
	switch schemas.Status(req.Status) {
	case "", schemas.StatusPlaced, schemas.StatusPaid, schemas.StatusShipped, schemas.StatusCancelled, schemas.StatusRefunded:
	default:
		errs = append(errs, reqErr("status", "status %q: want placed, paid, shipped, cancelled or refunded", req.Status))
	}
	var channel schemas.Channel
	if req.Channel != "" {
		var err error
		if channel, err = schemas.ParseChannelFilter(req.Channel); err != nil {
			errs = append(errs, reqErr("channel", "%v", err))
		}
	}
	if !req.From.IsZero() && !req.To.IsZero() && !req.From.Before(req.To) {
		errs = append(errs, reqErr("to", "from %s is not before to %s", req.From.Format(time.RFC3339), req.To.Format(time.RFC3339)))
	}
	var after []json.RawMessage
	if req.After != "" {
		var err error
		if after, err = decodeCursor(req.After, sort); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, 0, err
	}

	filter := []any{}
	for _, f := range []struct{ field, value string }{
		{"stock_codes", req.Product}, {"country", req.Country}, {"customer_id", req.Customer},
		{"kind", req.Kind}, {"status", req.Status},
	} {
		if f.value != "" {
			filter = append(filter, obj("term", obj(f.field, f.value)))
		}
	}
	switch {
	case req.Channel == "":
	case channel == "": // unknown: documents without the field
		filter = append(filter, obj("bool", obj("must_not", []any{obj("exists", obj("field", "channel"))})))
	default:
		filter = append(filter, obj("term", obj("channel", string(channel))))
	}
	if !req.From.IsZero() || !req.To.IsZero() {
		rng := map[string]any{}
		if !req.From.IsZero() {
			rng["gte"] = req.From.UTC().Format(time.RFC3339Nano)
		}
		if !req.To.IsZero() {
			rng["lt"] = req.To.UTC().Format(time.RFC3339Nano)
		}
		filter = append(filter, obj("range", obj("placed_at", rng)))
	}
	boolQ := map[string]any{
		"filter":               filter,
		"must_not":             []any{obj("term", obj("deleted", true))},
		"minimum_should_match": 0,
	}
	var should []any
	if text != "" {
		boolQ["must"] = []any{obj("multi_match", map[string]any{
			"query":  text,
			"fields": []string{"descriptions", "order_number^20"},
			"type":   "best_fields",
		})}
		should = append(should,
			// Every word present ranks above some words present.
			obj("match", obj("descriptions", map[string]any{"query": text, "operator": "and", "boost": 3})),
			// The words side by side, in order, rank higher still.
			obj("match_phrase", obj("descriptions", map[string]any{"query": text, "boost": 2})),
		)
	}
	if text != "" || req.Product != "" {
		// Counts the matching lines (inner_hits total) without scoring.
		var lineQ []any
		if text != "" {
			lineQ = append(lineQ, obj("match", obj("lines.description", map[string]any{"query": text, "operator": "and"})))
		}
		if req.Product != "" {
			lineQ = append(lineQ, obj("term", obj("lines.stock_code", req.Product)))
		}
		should = append(should, obj("nested", map[string]any{
			"path":       "lines",
			"score_mode": "none",
			"query":      obj("bool", map[string]any{"should": lineQ, "minimum_should_match": 1}),
			"inner_hits": map[string]any{"name": "matched", "size": 0, "_source": false},
		}))
	}
	if len(should) > 0 {
		boolQ["should"] = should
	}
	terms := func(field string) any { return obj("terms", map[string]any{"field": field, "size": FacetSize}) }
	body := map[string]any{
		"size":             size + 1, // one more tells whether a next page exists
		"track_total_hits": true,
		"query":            obj("bool", boolQ),
		"sort":             sortJSON,
		"aggs": map[string]any{
			"country": terms("country"),
			"channel": obj("terms", map[string]any{"field": "channel", "size": FacetSize, "missing": schemas.ChannelUnknown}),
			"kind":    terms("kind"),
			"status":  terms("status"),
		},
	}
	if after != nil {
		body["search_after"] = after
	}
	b, err := json.Marshal(body)
	if err != nil {
		return nil, 0, fmt.Errorf("encode search: %w", err)
	}
	return b, size, nil
}

func obj(k string, v any) map[string]any { return map[string]any{k: v} }

// parseResult decodes a search response of a body built by searchBody.
func parseResult(b []byte, size int, sort Sort) (Result, error) {
	type buckets struct {
		Buckets []struct {
			Key      string `json:"key"`
			DocCount int64  `json:"doc_count"`
		} `json:"buckets"`
	}
	var resp struct {
		Hits struct {
			Total struct {
				Value int64 `json:"value"`
			} `json:"total"`
			Hits []struct {
				Source    Order             `json:"_source"`
				Sort      []json.RawMessage `json:"sort"`
				InnerHits map[string]struct {
					Hits struct {
						Total struct {
							Value int `json:"value"`
						} `json:"total"`
					} `json:"hits"`
				} `json:"inner_hits"`
			} `json:"hits"`
		} `json:"hits"`
		Aggregations map[string]buckets `json:"aggregations"`
	}
	if err := json.Unmarshal(b, &resp); err != nil {
		return Result{}, fmt.Errorf("decode search response: %w", err)
	}
	res := Result{Total: resp.Hits.Total.Value, Hits: make([]Order, 0, min(size, len(resp.Hits.Hits)))}
	for i, h := range resp.Hits.Hits {
		if i == size {
			res.Next = encodeCursor(cursor{Sort: sort, Values: resp.Hits.Hits[i-1].Sort})
			break
		}
		o := h.Source
		o.MatchedLines = h.InnerHits["matched"].Hits.Total.Value
		res.Hits = append(res.Hits, o)
	}
	conv := func(name string) []Bucket {
		out := []Bucket{}
		for _, bk := range resp.Aggregations[name].Buckets {
			out = append(out, Bucket{Key: bk.Key, Count: bk.DocCount})
		}
		return out
	}
	res.Facets = Facets{Country: conv("country"), Channel: conv("channel"), Kind: conv("kind"), Status: conv("status")}
	return res, nil
}
