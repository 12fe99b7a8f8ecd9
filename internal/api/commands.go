package api

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/orderstream/orderstream/producer/command"
	"github.com/orderstream/orderstream/producer/order"
	"github.com/orderstream/orderstream/producer/store"
	"github.com/orderstream/orderstream/schemas"
)

// ScopeOrdersWrite grants the order commands (place, pay, ship, cancel,
// refund).
const ScopeOrdersWrite = "orders:write"

// Commands runs order commands: the write side's application service
// (*command.Handler on store.Repository), the very path `orderstream import`
// and `orderstream orders` take. Safe for concurrent use.
type Commands interface {
	PlaceOrder(ctx context.Context, id string, in order.PlaceInput, md schemas.Metadata, opts command.Options) (command.Receipt, error)
	Run(ctx context.Context, id string, c command.Command, md schemas.Metadata, opts command.Options) (command.Receipt, error)
}

// Limits of command requests.
const (
	// maxCommandBytes bounds a command's body: 2 MiB, room for an order of
	// some 10,000 lines (schemas.MaxLines) at ~150 bytes a line.
	maxCommandBytes = 2 << 20
	// maxIdempotencyKey bounds the Idempotency-Key header (characters).
	maxIdempotencyKey = 255
)

// PlaceRequest is the body of POST /api/v1/orders. OrderNumber defaults to
// the new order id without hyphens; Kind to sale; Currency to GBP (the only
// currency the read models sum); PlacedAt to now. Money is a decimal
// string.
type PlaceRequest struct {
	OrderNumber string        `json:"order_number,omitempty"`
	Kind        string        `json:"kind,omitempty"`
	CustomerID  string        `json:"customer_id,omitempty"`
	Country     string        `json:"country"`
	Currency    string        `json:"currency,omitempty"`
	PlacedAt    *time.Time    `json:"placed_at,omitempty"`
	Lines       []LineRequest `json:"lines"`
}

// LineRequest is one line of a PlaceRequest.
type LineRequest struct {
	StockCode   string  `json:"stock_code"`
	Description string  `json:"description,omitempty"`
	Quantity    *int64  `json:"quantity"`
	UnitPrice   *Amount `json:"unit_price"`
}

// ChangeRequest is the body of POST /api/v1/orders/{id}/{pay,ship,cancel,
// refund}; At defaults to now. Pay takes amount (the order's total) and
// reference; ship carrier and tracking_number; cancel reason (required);
// refund amount (required) and reason. A field the command does not take
// is refused.
type ChangeRequest struct {
	At             *time.Time `json:"at,omitempty"`
	Amount         *Amount    `json:"amount,omitempty"`
	Reference      string     `json:"reference,omitempty"`
	Carrier        string     `json:"carrier,omitempty"`
	TrackingNumber string     `json:"tracking_number,omitempty"`
	Reason         string     `json:"reason,omitempty"`
}

// CommandResponse is the answer to a command: the order, its version after
// the command (also the ETag), its status, and the consistency token a query
// can wait for (the Consistency-Token header of GET requests).
type CommandResponse struct {
	OrderID          string `json:"order_id"`
	Version          int64  `json:"version"`
	Status           string `json:"status"`
	ConsistencyToken string `json:"consistency_token"`
}

// principalKey carries the authenticated Principal in a request's context.
type principalKey struct{}

func principalOf(ctx context.Context) Principal {
	p, _ := ctx.Value(principalKey{}).(Principal)
	return p
}

// isCommandPath reports whether path is one of the command endpoints
// (POST /api/v1/orders and POST /api/v1/orders/{id}/{command}).
func isCommandPath(path string) bool {
	if path == "/api/v1/orders" {
		return true
	}
	rest, ok := strings.CutPrefix(path, "/api/v1/orders/")
	if !ok {
		return false
	}
	i := strings.LastIndexByte(rest, '/')
	if i <= 0 {
		return false
	}
	switch rest[i+1:] {
	case "pay", "ship", "cancel", "refund":
		return true
	}
	return false
}

func (s *Server) commandRoutes(mux *http.ServeMux) {
	mux.HandleFunc("POST /api/v1/orders", s.require(ScopeOrdersWrite, s.handlePlace))
	for _, name := range []string{"pay", "ship", "cancel", "refund"} {
		mux.HandleFunc("POST /api/v1/orders/{id}/"+name, s.require(ScopeOrdersWrite, s.handleChange(name)))
	}
}

func (s *Server) handlePlace(w http.ResponseWriter, r *http.Request) {
	var req PlaceRequest
	if !decodeBody(w, r, &req) {
		return
	}
	if r.Header.Get("If-Match") != "" {
		writeBadParams(w, r, []*paramError{badParam("If-Match", "a new order has no version to match; send If-Match with pay, ship, cancel or refund")})
		return
	}
	in, errs := req.input(time.Now())
	opts, kerrs := s.commandOptions(r, "place", "", req)
	if errs = append(errs, kerrs...); len(errs) > 0 {
		writeBadParams(w, r, errs)
		return
	}
	id := uuid.NewString()
	if in.Number == "" {
		in.Number = strings.ReplaceAll(id, "-", "")
	}
	rc, err := s.cfg.Commands.PlaceOrder(r.Context(), id, in, metadata(r), opts)
	s.answerCommand(w, r, http.StatusCreated, rc, err)
}

func (s *Server) handleChange(name string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		id := r.PathValue("id")
		var req ChangeRequest
		if !decodeBody(w, r, &req) {
			return
		}
		var errs []*paramError
		if !validOrderRef(id) {
			errs = append(errs, badParam("id", "is not an order id: want 1 to %d characters of UTF-8 without control characters", maxOrderIDChars))
		}
		c, cerrs := req.command(name, time.Now())
		opts, kerrs := s.commandOptions(r, name, id, req)
		if errs = append(append(errs, cerrs...), kerrs...); len(errs) > 0 {
			writeBadParams(w, r, errs)
			return
		}
		rc, err := s.cfg.Commands.Run(r.Context(), id, c, metadata(r), opts)
		s.answerCommand(w, r, http.StatusOK, rc, err)
	}
}

// metadata is the events' metadata of a request: a fresh correlation id.
func metadata(*http.Request) schemas.Metadata {
	return schemas.Metadata{CorrelationID: uuid.NewString()}
}

// decodeBody reads a JSON body into v strictly: application/json, one
// object, no unknown field, at most maxCommandBytes. It answers 400, 413 or
// 415 itself and returns false on any problem.
func decodeBody(w http.ResponseWriter, r *http.Request, v any) bool {
	if ct := r.Header.Get("Content-Type"); ct != "" {
		// RFC 9110 §8.3.1: the type and subtype are case-insensitive;
		// parameters such as charset=utf-8 may follow.
		if mt, _, err := mime.ParseMediaType(ct); err != nil || mt != "application/json" {
			writeProblem(w, r, Problem{Status: http.StatusUnsupportedMediaType, Detail: "Content-Type " + quote(ct) + ": send application/json"})
			return false
		}
	}
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	err := dec.Decode(v)
	if err == nil && dec.More() {
		err = errors.New("more than one JSON value")
	}
	if err == nil {
		if _, rerr := io.Copy(io.Discard, r.Body); rerr != nil {
			err = rerr
		}
	}
	var tooBig *http.MaxBytesError
	var typeErr *json.UnmarshalTypeError
	var syntaxErr *json.SyntaxError
	switch {
	case err == nil:
		return true
	case errors.As(err, &tooBig):
		writeProblem(w, r, Problem{Status: http.StatusRequestEntityTooLarge, Detail: "request body is larger than " + strconv.FormatInt(tooBig.Limit, 10) + " bytes"})
	case errors.Is(err, io.EOF):
		writeBadParams(w, r, []*paramError{badParam("body", "is empty; send a JSON object")})
	case errors.As(err, &typeErr):
		field := typeErr.Field
		if field == "" { // the body itself: an array, a string, a number
			field = "body"
		}
		writeBadParams(w, r, []*paramError{badParam(field, "want a JSON %s", jsonType(typeErr.Type.String()))})
	case errors.As(err, &syntaxErr):
		writeBadParams(w, r, []*paramError{badParam("body", "is not valid JSON at byte %d: %v", syntaxErr.Offset, err)})
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		field := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
		writeBadParams(w, r, []*paramError{badParam(field, "is not a field of this command (see /openapi.json)")})
	default:
		writeBadParams(w, r, []*paramError{badParam("body", "%v", err)})
	}
	return false
}

func jsonType(goType string) string {
	switch {
	case strings.Contains(goType, "int"):
		return "integer"
	case goType == "string", strings.HasSuffix(goType, "Amount"), strings.HasSuffix(goType, "Time"):
		return "string"
	case strings.HasPrefix(goType, "[]"):
		return "array"
	}
	return "object"
}

// input checks the request against the schema (types, required fields,
// enums) and returns the aggregate's input; the aggregate checks the rest
// (ranges, lengths) and answers 422.
func (p PlaceRequest) input(now time.Time) (order.PlaceInput, []*paramError) {
	var errs []*paramError
	in := order.PlaceInput{Number: p.OrderNumber, Kind: schemas.Kind(p.Kind), CustomerID: p.CustomerID, Country: p.Country,
		Currency: p.Currency, PlacedAt: now.UTC().Truncate(time.Second)}
	if in.Kind == "" {
		in.Kind = schemas.KindSale
	}
	if !in.Kind.Valid() {
		errs = append(errs, badParam("kind", "%q is not one of sale, credit_note, adjustment", p.Kind))
	}
	if in.Currency == "" {
		in.Currency = schemas.CurrencyGBP
	}
	if in.Currency != schemas.CurrencyGBP {
		errs = append(errs, badParam("currency", "%q: the read models sum in GBP, the only currency taken", p.Currency))
	}
	if strings.TrimSpace(p.Country) == "" {
		errs = append(errs, badParam("country", "is required"))
	}
	if p.PlacedAt != nil {
		in.PlacedAt = p.PlacedAt.UTC()
	}
	if len(p.Lines) == 0 {
		errs = append(errs, badParam("lines", "is required: at least one line"))
	}
	for i, l := range p.Lines {
		name := fmt.Sprintf("lines[%d].", i)
		if l.StockCode == "" {
			errs = append(errs, badParam(name+"stock_code", "is required"))
		}
		if l.Quantity == nil {
			errs = append(errs, badParam(name+"quantity", "is required"))
		}
		if l.UnitPrice == nil {
			errs = append(errs, badParam(name+"unit_price", "is required (a decimal string such as \"2.55\")"))
		} else if err := l.UnitPrice.Invalid(); err != nil {
			errs = append(errs, badParam(name+"unit_price", "%v", err))
		}
		if len(errs) > 0 {
			continue
		}
		in.Lines = append(in.Lines, schemas.Line{StockCode: l.StockCode, Description: l.Description, Quantity: *l.Quantity,
			UnitPrice: schemas.NewMoney(l.UnitPrice.Decimal, in.Currency)})
	}
	return in, errs
}

// command checks the request for the command name and returns it.
func (c ChangeRequest) command(name string, now time.Time) (command.Command, []*paramError) {
	var errs []*paramError
	at := now.UTC().Truncate(time.Millisecond)
	if c.At != nil {
		at = c.At.UTC()
	}
	not := func(field string, given bool) {
		if given {
			errs = append(errs, badParam(field, "is not a field of %s", name))
		}
	}
	money := func() schemas.Money {
		if c.Amount == nil {
			errs = append(errs, badParam("amount", "is required (a decimal string such as \"20.00\")"))
			return schemas.Money{}
		}
		if err := c.Amount.Invalid(); err != nil {
			errs = append(errs, badParam("amount", "%v", err))
			return schemas.Money{}
		}
		return schemas.NewMoney(c.Amount.Decimal, schemas.CurrencyGBP)
	}
	var cmd command.Command
	switch name {
	case "pay":
		not("carrier", c.Carrier != "")
		not("tracking_number", c.TrackingNumber != "")
		not("reason", c.Reason != "")
		cmd = command.Pay{At: at, Amount: money(), Reference: c.Reference}
	case "ship":
		not("amount", c.Amount != nil)
		not("reference", c.Reference != "")
		not("reason", c.Reason != "")
		cmd = command.Ship{At: at, Carrier: c.Carrier, Tracking: c.TrackingNumber}
	case "cancel":
		not("amount", c.Amount != nil)
		not("reference", c.Reference != "")
		not("carrier", c.Carrier != "")
		not("tracking_number", c.TrackingNumber != "")
		if strings.TrimSpace(c.Reason) == "" {
			errs = append(errs, badParam("reason", "is required"))
		}
		cmd = command.Cancel{At: at, Reason: c.Reason}
	case "refund":
		not("reference", c.Reference != "")
		not("carrier", c.Carrier != "")
		not("tracking_number", c.TrackingNumber != "")
		cmd = command.Refund{At: at, Amount: money(), Reason: c.Reason}
	}
	return cmd, errs
}

// commandOptions reads If-Match and Idempotency-Key. The fingerprint of an
// idempotency key (Fingerprint) is over the command, the order id and the
// body as decoded and encoded again (so that whitespace and field order do
// not count).
func (s *Server) commandOptions(r *http.Request, name, id string, body any) (command.Options, []*paramError) {
	var opts command.Options
	var errs []*paramError
	if vals := r.Header.Values("If-Match"); len(vals) > 0 {
		v, err := parseETag(strings.Join(vals, ","))
		if err != nil {
			errs = append(errs, badParam("If-Match", "%v", err))
		}
		opts.IfVersion = v
	}
	if vals := r.Header.Values("Idempotency-Key"); len(vals) > 0 {
		key := strings.TrimSpace(vals[0])
		if len(key) >= 2 && key[0] == '"' && key[len(key)-1] == '"' {
			key = key[1 : len(key)-1] // the draft's sf-string form
		}
		switch {
		case len(vals) > 1:
			errs = append(errs, badParam("Idempotency-Key", "given %d times; give it once", len(vals)))
		case key == "" || len(key) > maxIdempotencyKey:
			errs = append(errs, badParam("Idempotency-Key", "want 1 to %d printable ASCII characters", maxIdempotencyKey))
		case strings.IndexFunc(key, func(c rune) bool { return c < 0x20 || c > 0x7e }) >= 0:
			errs = append(errs, badParam("Idempotency-Key", "contains a character that is not printable ASCII"))
		default:
			opts.Key = &command.Key{Scope: principalOf(r.Context()).Subject, Key: key, Fingerprint: Fingerprint(name, id, body)}
		}
	}
	return opts, errs
}

// parseETag reads an If-Match value: one strong entity tag, a version in
// quotes ("3"). "*" (any current version) makes the command unconditional.
func parseETag(v string) (int64, error) {
	v = strings.TrimSpace(v)
	if v == "*" {
		return 0, nil
	}
	if strings.Contains(v, ",") {
		return 0, fmt.Errorf("%q: give one entity tag, the order's version as an ETag returned it", v)
	}
	n, err := strconv.ParseInt(strings.Trim(v, `"`), 10, 64)
	if err != nil || n < 1 || len(v) < 3 || v[0] != '"' || v[len(v)-1] != '"' {
		return 0, fmt.Errorf("%q is not an entity tag of this API: want the order's version in quotes, such as \"3\"", v)
	}
	return n, nil
}

// ConsistencyToken returns the token of an order's version: "<version>:<order
// id>", the value of the Consistency-Token header.
func ConsistencyToken(orderID string, version int64) string {
	return strconv.FormatInt(version, 10) + ":" + orderID
}

// ParseConsistencyToken is the inverse of ConsistencyToken.
func ParseConsistencyToken(tok string) (orderID string, version int64, err error) {
	v, id, ok := strings.Cut(strings.TrimSpace(tok), ":")
	version, perr := strconv.ParseInt(v, 10, 64)
	if !ok || perr != nil || version < 1 || !validOrderRef(id) {
		return "", 0, fmt.Errorf("%q is not a consistency token: want <version>:<order id> as a command's response returned it", tok)
	}
	return id, version, nil
}

// answerCommand writes a command's receipt (code, ETag, Location,
// Consistency-Token; Idempotent-Replayed: true for a stored receipt) or its
// error as a problem.
func (s *Server) answerCommand(w http.ResponseWriter, r *http.Request, code int, rc command.Receipt, err error) {
	if err != nil {
		s.commandError(w, r, err)
		return
	}
	h := w.Header()
	tok := ConsistencyToken(rc.OrderID, rc.Version)
	h.Set("ETag", strconv.Quote(strconv.FormatInt(rc.Version, 10)))
	h.Set("Location", "/api/v1/orders/"+url.PathEscape(rc.OrderID))
	h.Set("Consistency-Token", tok)
	if rc.Replayed {
		h.Set("Idempotent-Replayed", "true")
	}
	writeJSONStatus(w, code, CommandResponse{OrderID: rc.OrderID, Version: rc.Version, Status: string(rc.Status), ConsistencyToken: tok})
}

// ruleProblems maps each rule of the aggregate to its answer: 409 when the
// order's state forbids the command (retrying the same command cannot
// succeed until the state changes), 422 when the command's values are wrong
// for this order. The slug is the problem's rule and the end of its type.
var ruleProblems = []struct {
	rule   error
	status int
	slug   string
}{
	{order.ErrAlreadyPlaced, http.StatusConflict, "order-already-placed"},
	{order.ErrNotPlaced, http.StatusNotFound, "order-not-placed"},
	{order.ErrCancelled, http.StatusConflict, "order-cancelled"},
	{order.ErrNotPaid, http.StatusConflict, "order-not-paid"},
	{order.ErrAlreadyPaid, http.StatusConflict, "order-already-paid"},
	{order.ErrAlreadyShipped, http.StatusConflict, "order-already-shipped"},
	{order.ErrRefunded, http.StatusConflict, "order-refunded"},
	{order.ErrWrongKind, http.StatusConflict, "wrong-kind-of-order"},
	{order.ErrAmountMismatch, http.StatusUnprocessableEntity, "amount-mismatch"},
	{order.ErrInvalidArgument, http.StatusUnprocessableEntity, "invalid-argument"},
}

// problemType is the type URI of a problem naming rule.
func problemType(rule string) string { return "urn:orderstream:problem:" + rule }

// commandError answers a refused or failed command.
func (s *Server) commandError(w http.ResponseWriter, r *http.Request, err error) {
	var re *order.RuleError
	var vm *command.VersionMismatchError
	switch {
	case errors.As(err, &re):
		for _, rp := range ruleProblems {
			if errors.Is(re.Rule, rp.rule) {
				writeProblem(w, r, Problem{Status: rp.status, Type: problemType(rp.slug), Rule: rp.slug, Detail: re.Error()})
				return
			}
		}
	case errors.As(err, &vm):
		w.Header().Set("ETag", strconv.Quote(strconv.FormatInt(vm.Actual, 10)))
		writeProblem(w, r, Problem{Status: http.StatusPreconditionFailed, Type: problemType("version-mismatch"), Rule: "version-mismatch",
			Detail: vm.Error() + " (If-Match); read the order again and decide on its current state", CurrentVersion: vm.Actual})
		return
	case errors.Is(err, command.ErrKeyReused):
		writeProblem(w, r, Problem{Status: http.StatusUnprocessableEntity, Type: problemType("idempotency-key-reused"), Rule: "idempotency-key-reused",
			Detail: err.Error() + "; use a new key for a new request"})
		return
	case errors.Is(err, schemas.ErrInvalidEvent), errors.Is(err, schemas.ErrOutOfRange):
		// The store's check of the events the command would write (their
		// serialized size, what an older --event-version can carry): the
		// same command fails the same way, so it is the caller's to change.
		writeProblem(w, r, Problem{Status: http.StatusUnprocessableEntity, Type: problemType("invalid-argument"), Rule: "invalid-argument",
			Detail: err.Error()})
		return
	case errors.Is(err, store.ErrNotFound):
		writeProblem(w, r, Problem{Status: http.StatusNotFound, Type: problemType("order-not-found"), Rule: "order-not-found",
			Detail: "no order has id " + quote(r.PathValue("id")) + " on the write side"})
		return
	case errors.Is(err, store.ErrDuplicateNumber):
		writeProblem(w, r, Problem{Status: http.StatusConflict, Type: problemType("order-number-taken"), Rule: "order-number-taken",
			Detail: "an order with this order_number exists already; give another or none"})
		return
	case errors.Is(err, store.ErrConflict):
		w.Header().Set("Retry-After", "1")
		writeProblem(w, r, Problem{Status: http.StatusConflict, Type: problemType("concurrent-update"), Rule: "concurrent-update",
			Detail: "the order kept changing under this command (" + strconv.Itoa(command.ConflictRetries) + " retries); try again"})
		return
	}
	if errors.Is(r.Context().Err(), context.Canceled) {
		return // the client went away; a retry with its idempotency key learns the outcome
	}
	if errors.Is(err, context.DeadlineExceeded) {
		s.log.Warn("command timed out", "path", r.URL.Path, "err", err)
		writeProblem(w, r, Problem{Status: http.StatusGatewayTimeout,
			Detail: "the write side did not answer within " + s.cfg.RequestTimeout.String() + "; the command may have committed: retry with the same Idempotency-Key to learn"})
		return
	}
	s.log.Error("command failed", "path", r.URL.Path, "err", err)
	w.Header().Set("Retry-After", "5")
	writeProblem(w, r, Problem{Status: http.StatusServiceUnavailable,
		Detail: "the write side is unavailable; retry with the same Idempotency-Key"})
}

// PlaceCommand checks req as POST /api/v1/orders does (now: the default
// placed time) and returns the aggregate's input; the error names every bad
// field. `orderstream orders place` builds its command with it.
func PlaceCommand(req PlaceRequest, now time.Time) (order.PlaceInput, error) {
	in, errs := req.input(now)
	return in, joinParams(errs)
}

// ChangeCommand checks req as POST /api/v1/orders/{id}/{name} does and
// returns the command (name: pay, ship, cancel or refund).
func ChangeCommand(name string, req ChangeRequest, now time.Time) (command.Command, error) {
	c, errs := req.command(name, now)
	if c == nil {
		errs = append(errs, badParam("command", "%q is not one of pay, ship, cancel, refund", name))
	}
	return c, joinParams(errs)
}

// Fingerprint is the idempotency fingerprint of command name on order id
// (id "" for place) with body (a PlaceRequest or ChangeRequest): SHA-256
// over the three, the body encoded as JSON. The API and the CLI compute it
// alike, so a key is the same request whichever way it came.
func Fingerprint(name, id string, body any) []byte {
	b, _ := json.Marshal(body) // request structs: always encodable
	sum := sha256.Sum256(bytes.Join([][]byte{[]byte(name), []byte(id), b}, []byte{0}))
	return sum[:]
}

func joinParams(errs []*paramError) error {
	out := make([]error, len(errs))
	for i, e := range errs {
		out[i] = e
	}
	return errors.Join(out...)
}

// RuleName returns the rule a refused command's error names, as the API's
// problems do (order-cancelled, amount-mismatch, version-mismatch,
// idempotency-key-reused …), or "" for an error that is no refusal.
func RuleName(err error) string {
	var re *order.RuleError
	if errors.As(err, &re) {
		for _, rp := range ruleProblems {
			if errors.Is(re.Rule, rp.rule) {
				return rp.slug
			}
		}
	}
	switch {
	case errors.Is(err, command.ErrVersionMismatch):
		return "version-mismatch"
	case errors.Is(err, command.ErrKeyReused):
		return "idempotency-key-reused"
	case errors.Is(err, schemas.ErrInvalidEvent), errors.Is(err, schemas.ErrOutOfRange):
		return "invalid-argument"
	case errors.Is(err, store.ErrNotFound):
		return "order-not-found"
	case errors.Is(err, store.ErrDuplicateNumber):
		return "order-number-taken"
	}
	return ""
}
