package api

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"time"
	"unicode"

	"github.com/orderstream/orderstream/schemas"
)

// Search answers order search from the search read model; implementations
// are the same queries `orderstream search` runs. Safe for concurrent use;
// ctx carries the request's deadline.
type Search interface {
	// Search returns one page of orders matching req.
	Search(ctx context.Context, req SearchRequest) (SearchResult, error)
	// Get returns one order with its lines, or an error wrapping
	// ErrNotFound.
	Get(ctx context.Context, id string) (Order, error)
}

// ErrNotFound is wrapped by Search.Get when no order has the id.
var ErrNotFound = errors.New("not found")

// ErrInvalidRequest is wrapped by Search.Search when the read model refuses
// the request itself (a cursor of another query, say); the API answers 400
// with the error's text, and with invalid_params when the error is (or
// joins) *ParamError values.
var ErrInvalidRequest = errors.New("invalid search request")

// ParamError is a refused query parameter of a search (Name: "after",
// "country", "sort", "size", "kind", "status", "from" or "to"); it wraps
// ErrInvalidRequest.
type ParamError struct {
	Name   string
	Reason string
}

// Error returns "<name>: <reason>".
func (e *ParamError) Error() string { return e.Name + ": " + e.Reason }

// Unwrap returns ErrInvalidRequest.
func (e *ParamError) Unwrap() error { return ErrInvalidRequest }

// paramErrors returns the *ParamError values in err's tree (errors.Join
// included), in order.
func paramErrors(err error) []*paramError {
	var out []*paramError
	var walk func(error)
	walk = func(err error) {
		if pe, ok := err.(*ParamError); ok {
			out = append(out, badParam(pe.Name, "%s", pe.Reason))
			return
		}
		switch u := err.(type) {
		case interface{ Unwrap() []error }:
			for _, e := range u.Unwrap() {
				walk(e)
			}
		case interface{ Unwrap() error }:
			if e := u.Unwrap(); e != nil {
				walk(e)
			}
		}
	}
	walk(err)
	return out
}

// SearchRequest is one page of an order search. Empty fields do not filter.
// Text is full text over product descriptions and order number; Product a
// stock code; From/To Europe/London calendar days, inclusive; Sort
// "relevance" (best text match first), "date" (newest first), "total"
// (largest first) or "" (relevance with Text, else date); After the opaque cursor of the
// previous page's SearchResult.Next; Size the page size, 1..MaxPageSize.
type SearchRequest struct {
	Text     string
	Product  string
	Country  string
	Channel  string // web, phone, marketplace, store or unknown (schemas.ChannelFilters)
	Customer string
	Kind     string
	Status   string
	From     time.Time
	To       time.Time
	Sort     string
	After    string
	Size     int
}

// SearchResult is one page: Total orders matching (the whole result, not
// the page), the page's Hits, Facets counted over the whole result (keys
// "country", "channel", "kind", "status"; channel "unknown" counts the
// orders that do not say), and Next, the cursor of the next page (""
// on the last page).
type SearchResult struct {
	Total  int64                   `json:"total"`
	Hits   []OrderSummary          `json:"hits"`
	Facets map[string][]FacetValue `json:"facets"`
	Next   string                  `json:"next,omitempty"`
}

// FacetValue is one bucket of a facet.
type FacetValue struct {
	Value string `json:"value"`
	Count int64  `json:"count"`
}

// OrderSummary is an order as a result row. PlacedAt is UTC; Total in GBP;
// MatchedLines counts the lines matching the text or product (0 when
// neither was given).
type OrderSummary struct {
	ID           string    `json:"id"`
	OrderNumber  string    `json:"order_number"`
	Kind         string    `json:"kind"`
	Status       string    `json:"status"`
	CustomerID   string    `json:"customer_id,omitempty"`
	Country      string    `json:"country"`
	Channel      string    `json:"channel,omitempty"` // absent when not known
	PlacedAt     time.Time `json:"placed_at"`
	Total        Amount    `json:"total"`
	LineCount    int       `json:"line_count"`
	MatchedLines int       `json:"matched_lines,omitempty"`
}

// Order is one order with its lines. Paid and Refunded in GBP; UpdatedAt
// (UTC) is the time of the last event applied; Version the order's
// aggregate version after it.
type Order struct {
	OrderSummary
	Paid      Amount      `json:"paid"`
	Refunded  Amount      `json:"refunded"`
	UpdatedAt time.Time   `json:"updated_at"`
	Version   int64       `json:"version"`
	Lines     []OrderLine `json:"lines"`
}

// OrderLine is one line of an order; UnitPrice and Amount in GBP.
type OrderLine struct {
	LineNo      int    `json:"line_no"`
	StockCode   string `json:"stock_code"`
	Description string `json:"description"`
	Quantity    int64  `json:"quantity"`
	UnitPrice   Amount `json:"unit_price"`
	Amount      Amount `json:"amount"`
}

// Page sizes of the search endpoint.
const (
	// DefaultPageSize is the page size when size is not given.
	DefaultPageSize = 20
	// MaxPageSize is the largest page a client may ask for.
	MaxPageSize = 100
	// maxCursor bounds the after cursor (bytes).
	maxCursor = 1024
)

func (s *Server) handleSearch(w http.ResponseWriter, r *http.Request) {
	q := newQuery(r.URL.Query())
	from, to := q.dateRange()
	req := SearchRequest{
		Text:     q.str("q"),
		Product:  q.str("product"),
		Country:  q.str("country"),
		Channel:  q.oneOf("channel", "", schemas.ChannelFilters...),
		Customer: q.str("customer"),
		Kind:     q.oneOf("kind", "", "sale", "credit_note", "adjustment"),
		Status:   q.oneOf("status", "", "placed", "paid", "shipped", "cancelled", "refunded"),
		From:     from,
		To:       to,
		Sort:     q.oneOf("sort", "", "relevance", "date", "total"),
		Size:     q.intIn("size", DefaultPageSize, 1, MaxPageSize),
	}
	if vals := q.values("after"); len(vals) == 1 {
		req.After = vals[0]
		if len(req.After) > maxCursor || strings.IndexFunc(req.After, unicode.IsControl) >= 0 {
			q.fail("after", "is not a cursor this API returned (copy it from \"next\")")
		}
	} else if len(vals) > 1 {
		q.fail("after", "given %d times; give it once", len(vals))
	}
	if !q.ok() {
		writeBadParams(w, r, q.errs)
		return
	}
	res, err := s.search.Search(r.Context(), req)
	if errors.Is(err, ErrInvalidRequest) {
		if perrs := paramErrors(err); len(perrs) > 0 {
			writeBadParams(w, r, perrs)
			return
		}
		writeProblem(w, r, Problem{Status: http.StatusBadRequest, Title: "Invalid search request", Detail: err.Error()})
		return
	}
	if err != nil {
		s.backendError(w, r, "search", err)
		return
	}
	if res.Hits == nil {
		res.Hits = []OrderSummary{}
	}
	if res.Facets == nil {
		res.Facets = map[string][]FacetValue{}
	}
	writeJSON(w, res)
}

func (s *Server) handleOrder(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if !validOrderRef(id) {
		writeBadParams(w, r, []*paramError{badParam("id", "is neither an order id nor an order number: want 1 to %d characters of UTF-8 "+
			"without control characters (an order id such as 8fbcb099-d50e-4b4c-8f58-809c190e5c96, or an order number such as 581538)",
			maxOrderIDChars)})
		return
	}
	o, err := s.search.Get(r.Context(), id)
	if errors.Is(err, ErrNotFound) {
		writeProblem(w, r, Problem{Status: http.StatusNotFound, Detail: "no order has id or order number " + quote(id) +
			" (give an order id, a UUID, or an order number such as 581538 or C536379)"})
		return
	}
	if err != nil {
		s.backendError(w, r, "search", err)
		return
	}
	if o.Lines == nil {
		o.Lines = []OrderLine{}
	}
	writeJSON(w, o)
}

// maxOrderIDChars bounds the id of GET /api/v1/orders/{id}, in characters:
// the event contract's aggregate_id maxLength (schemas/v1/envelope.json),
// which also holds every order number (schemas.MaxOrderNumber, 32).
const maxOrderIDChars = 128

// validOrderRef reports whether id can name an order: an order id or order
// number within the event contract (1 to maxOrderIDChars characters of
// valid UTF-8, no NUL) and without control characters. The import makes
// order ids UUIDs (producer/csvimport.OrderID), but the contract allows
// any such text, so the check is the contract's; what keeps the id out of
// the search engine's URL is its escaping (search.Engine.Get).
func validOrderRef(id string) bool {
	return id != "" && schemas.CheckText(id, maxOrderIDChars) == nil &&
		strings.IndexFunc(id, unicode.IsControl) < 0
}
