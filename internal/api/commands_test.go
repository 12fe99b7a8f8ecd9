package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/orderstream/orderstream/internal/testenv"
	"github.com/orderstream/orderstream/producer/command"
	"github.com/orderstream/orderstream/producer/store"
	"github.com/orderstream/orderstream/schemas"
)

// writeSide is a migrated database of its own with the application service
// on it.
type writeSide struct {
	pool     *pgxpool.Pool
	commands *command.Handler
}

func newWriteSide(t *testing.T) writeSide {
	t.Helper()
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, testenv.NewDatabase(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	if _, err := store.Migrate(ctx, pool, quietLog()); err != nil {
		t.Fatal(err)
	}
	return writeSide{pool: pool, commands: newHandler(t, pool)}
}

// newHandler is a fresh application service on pool: what a restarted
// server builds.
func newHandler(t *testing.T, pool *pgxpool.Pool) *command.Handler {
	t.Helper()
	v, err := schemas.NewValidator()
	if err != nil {
		t.Fatal(err)
	}
	return command.NewHandler(store.NewRepository(pool, v), func(err error) bool { return errors.Is(err, store.ErrConflict) })
}

// server returns the handler of a server in auth mode none running
// commands on ws (a new server each call: a restart).
func (ws writeSide) server(t *testing.T, opts ...Option) http.Handler {
	t.Helper()
	srv, err := New(Config{Auth: AuthNone, Analytics: &fakeAnalytics{}, Search: &fakeSearch{}, Commands: newHandler(t, ws.pool)},
		append([]Option{WithLogger(quietLog())}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	return srv.Handler()
}

func (ws writeSide) count(t *testing.T, q string, args ...any) int {
	t.Helper()
	var n int
	if err := ws.pool.QueryRow(context.Background(), q, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return n
}

func post(t *testing.T, h http.Handler, target, body string, header ...string) *httptest.ResponseRecorder {
	t.Helper()
	r := httptest.NewRequest(http.MethodPost, target, strings.NewReader(body))
	r.Host = "127.0.0.1:8080"
	r.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(header); i += 2 {
		r.Header.Set(header[i], header[i+1])
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

// sale20 is an order of two lines totalling 20.000 GBP.
const sale20 = `{"customer_id":"17850","country":"France","lines":[
	{"stock_code":"22728","description":"ALARM CLOCK BAKELIKE PINK","quantity":6,"unit_price":"2.50"},
	{"stock_code":"22726","quantity":1,"unit_price":"5"}]}`

func decodeReceipt(t *testing.T, w *httptest.ResponseRecorder, wantCode int) CommandResponse {
	t.Helper()
	if w.Code != wantCode {
		t.Fatalf("HTTP %d, want %d: %s", w.Code, wantCode, w.Body)
	}
	var cr CommandResponse
	if err := json.Unmarshal(w.Body.Bytes(), &cr); err != nil {
		t.Fatal(err)
	}
	if etag := w.Header().Get("ETag"); etag != fmt.Sprintf(`"%d"`, cr.Version) {
		t.Fatalf("ETag %s, version %d", etag, cr.Version)
	}
	if loc := w.Header().Get("Location"); loc != "/api/v1/orders/"+cr.OrderID {
		t.Fatalf("Location %q for order %s", loc, cr.OrderID)
	}
	if tok := w.Header().Get("Consistency-Token"); tok != cr.ConsistencyToken || tok != ConsistencyToken(cr.OrderID, cr.Version) {
		t.Fatalf("Consistency-Token %q, body %q", tok, cr.ConsistencyToken)
	}
	return cr
}

func place(t *testing.T, h http.Handler) CommandResponse {
	t.Helper()
	return decodeReceipt(t, post(t, h, "/api/v1/orders", sale20), http.StatusCreated)
}

// TestCommandLifecycle drives one sale through its whole life over HTTP
// and checks what each step answers and writes.
func TestCommandLifecycle(t *testing.T) {
	t.Parallel()
	ws := newWriteSide(t)
	h := ws.server(t)
	o := place(t, h)
	if o.Version != 1 || o.Status != "placed" {
		t.Fatalf("placed: %+v", o)
	}
	steps := []struct {
		path, body string
		version    int64
		status     string
	}{
		{"pay", `{"amount":"20.00","reference":"card-1"}`, 2, "paid"},
		{"ship", `{"carrier":"Royal Mail","tracking_number":"RM1"}`, 3, "shipped"},
		{"refund", `{"amount":"5","reason":"damaged"}`, 4, "shipped"},
		{"refund", `{"amount":"15.000","reason":"returned"}`, 5, "refunded"},
	}
	for _, s := range steps {
		got := decodeReceipt(t, post(t, h, "/api/v1/orders/"+o.OrderID+"/"+s.path, s.body), http.StatusOK)
		if got.OrderID != o.OrderID || got.Version != s.version || got.Status != s.status {
			t.Fatalf("%s: %+v, want version %d status %s", s.path, got, s.version, s.status)
		}
	}
	if n := ws.count(t, `SELECT count(*) FROM outbox WHERE aggregate_id = $1`, o.OrderID); n != 5 {
		t.Errorf("%d events in the outbox, want 5", n)
	}
	var number string
	if err := ws.pool.QueryRow(context.Background(), `SELECT order_number FROM orders WHERE order_id = $1`, o.OrderID).Scan(&number); err != nil ||
		number != strings.ReplaceAll(o.OrderID, "-", "") {
		t.Errorf("order number %q (%v), want the id without hyphens", number, err)
	}
}

// TestDomainRulesOverHTTP checks every rule of the aggregate a client can
// reach through the API: its status and the rule it names.
func TestDomainRulesOverHTTP(t *testing.T) {
	t.Parallel()
	ws := newWriteSide(t)
	h := ws.server(t)
	do := func(id, path, body string) *httptest.ResponseRecorder {
		return post(t, h, "/api/v1/orders/"+id+"/"+path, body)
	}
	must := func(w *httptest.ResponseRecorder) {
		t.Helper()
		if w.Code != http.StatusOK {
			t.Fatalf("setup: HTTP %d %s", w.Code, w.Body)
		}
	}
	placed := func() string { return place(t, h).OrderID }
	paid := func() string { id := placed(); must(do(id, "pay", `{"amount":"20"}`)); return id }
	shipped := func() string { id := paid(); must(do(id, "ship", `{}`)); return id }
	cancelled := func() string { id := placed(); must(do(id, "cancel", `{"reason":"changed mind"}`)); return id }
	creditNote := func() string {
		return decodeReceipt(t, post(t, h, "/api/v1/orders", `{"kind":"credit_note","country":"France","lines":[{"stock_code":"22728","quantity":-2,"unit_price":"2.50"}]}`), http.StatusCreated).OrderID
	}
	tests := []struct {
		name       string
		id         func() string
		path, body string
		wantCode   int
		wantRule   string
	}{
		{"pay a cancelled order", cancelled, "pay", `{"amount":"20"}`, 409, "order-cancelled"},
		{"pay twice", paid, "pay", `{"amount":"20"}`, 409, "order-already-paid"},
		{"pay another amount", placed, "pay", `{"amount":"19.99"}`, 422, "amount-mismatch"},
		{"pay a credit note", creditNote, "pay", `{"amount":"5"}`, 409, "wrong-kind-of-order"},
		{"ship before payment", placed, "ship", `{}`, 409, "order-not-paid"},
		{"ship twice", shipped, "ship", `{}`, 409, "order-already-shipped"},
		{"ship a cancelled order", cancelled, "ship", `{}`, 409, "order-cancelled"},
		{"cancel a shipped order", shipped, "cancel", `{"reason":"late"}`, 409, "order-already-shipped"},
		{"cancel a refunded order", func() string { id := paid(); must(do(id, "refund", `{"amount":"20"}`)); return id }, "cancel", `{"reason":"x"}`, 409, "order-refunded"},
		{"cancel twice", cancelled, "cancel", `{"reason":"again"}`, 409, "order-cancelled"},
		{"refund more than was paid", paid, "refund", `{"amount":"20.001"}`, 422, "amount-mismatch"},
		{"refund nothing", paid, "refund", `{"amount":"0"}`, 422, "amount-mismatch"},
		{"refund before payment", placed, "refund", `{"amount":"1"}`, 409, "order-not-paid"},
		{"refund a cancelled order", cancelled, "refund", `{"amount":"1"}`, 409, "order-cancelled"},
		{"refund a credit note by another amount", creditNote, "refund", `{"amount":"4"}`, 422, "amount-mismatch"},
		{"a reason over the contract's length", placed, "cancel", `{"reason":"` + strings.Repeat("x", schemas.MaxReason+1) + `"}`, 422, "invalid-argument"},
		{"an unknown order", func() string { return "no-such-order" }, "pay", `{"amount":"1"}`, 404, "order-not-found"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id := tt.id()
			before := ws.count(t, `SELECT count(*) FROM outbox`)
			w := do(id, tt.path, tt.body)
			if w.Code != tt.wantCode {
				t.Fatalf("HTTP %d, want %d: %s", w.Code, tt.wantCode, w.Body)
			}
			p := decodeProblem(t, w)
			if p.Rule != tt.wantRule || p.Type != "urn:orderstream:problem:"+tt.wantRule || p.Detail == "" {
				t.Fatalf("problem %+v, want rule %s", p, tt.wantRule)
			}
			if after := ws.count(t, `SELECT count(*) FROM outbox`); after != before {
				t.Fatalf("a refused command wrote %d events", after-before)
			}
		})
	}
	t.Run("place with an order number taken", func(t *testing.T) {
		body := `{"order_number":"W1","country":"France","lines":[{"stock_code":"1","quantity":1,"unit_price":"1"}]}`
		decodeReceipt(t, post(t, h, "/api/v1/orders", body), http.StatusCreated)
		w := post(t, h, "/api/v1/orders", body)
		if p := decodeProblem(t, w); w.Code != 409 || p.Rule != "order-number-taken" {
			t.Fatalf("HTTP %d %+v, want 409 order-number-taken", w.Code, p)
		}
	})
	t.Run("place an order whose event is over the contract's size", func(t *testing.T) {
		// 8,000 lines: within the lines and body limits, but order.placed
		// serializes to more than schemas.MaxEventBytes.
		var b strings.Builder
		b.WriteString(`{"country":"France","lines":[`)
		for i := range 8000 {
			if i > 0 {
				b.WriteByte(',')
			}
			fmt.Fprintf(&b, `{"stock_code":"S%d","description":"%s","quantity":1,"unit_price":"1"}`, i, strings.Repeat("d", 100))
		}
		b.WriteString(`]}`)
		before := ws.count(t, `SELECT count(*) FROM outbox`)
		w := post(t, h, "/api/v1/orders", b.String(), "Idempotency-Key", "too-big")
		if p := decodeProblem(t, w); w.Code != 422 || p.Rule != "invalid-argument" || !strings.Contains(p.Detail, "MaxEventBytes") {
			t.Fatalf("HTTP %d %+v, want 422 invalid-argument naming the event size", w.Code, p)
		}
		if after := ws.count(t, `SELECT count(*) FROM outbox`); after != before {
			t.Fatalf("a refused command wrote %d events", after-before)
		}
		if n := ws.count(t, `SELECT count(*) FROM idempotency_keys WHERE key = 'too-big'`); n != 0 {
			t.Fatalf("a refused command stored its key (%d keys)", n)
		}
	})
	t.Run("place a line out of the contract's range", func(t *testing.T) {
		w := post(t, h, "/api/v1/orders", `{"country":"France","lines":[{"stock_code":"1","quantity":1,"unit_price":"100000000000000"}]}`)
		if p := decodeProblem(t, w); w.Code != 422 || p.Rule != "invalid-argument" || !strings.Contains(p.Detail, "unit_price") {
			t.Fatalf("HTTP %d %+v, want 422 invalid-argument naming unit_price", w.Code, p)
		}
	})
}

// TestCommandValidation checks the 400s (naming the field or header), 413
// and 415 of malformed commands.
func TestCommandValidation(t *testing.T) {
	t.Parallel()
	ws := newWriteSide(t)
	h := ws.server(t)
	id := place(t, h).OrderID
	tests := []struct {
		name, path, body string
		header           []string
		wantCode         int
		wantParam        string
	}{
		{"no country", "/api/v1/orders", `{"lines":[{"stock_code":"1","quantity":1,"unit_price":"1"}]}`, nil, 400, "country"},
		{"no lines", "/api/v1/orders", `{"country":"France"}`, nil, 400, "lines"},
		{"line without price", "/api/v1/orders", `{"country":"France","lines":[{"stock_code":"1","quantity":1}]}`, nil, 400, "lines[0].unit_price"},
		{"quantity as text", "/api/v1/orders", `{"country":"France","lines":[{"stock_code":"1","quantity":"1","unit_price":"1"}]}`, nil, 400, "lines.quantity"},
		{"price not a decimal", "/api/v1/orders", `{"country":"France","lines":[{"stock_code":"1","quantity":1,"unit_price":"1"},{"stock_code":"2","quantity":1,"unit_price":"one"}]}`, nil, 400, "lines[1].unit_price"},
		{"refund amount not a decimal", "/api/v1/orders/" + id + "/refund", `{"amount":"zz"}`, nil, 400, "amount"},
		{"price a number, not a string", "/api/v1/orders", `{"country":"France","lines":[{"stock_code":"1","quantity":1,"unit_price":2.5}]}`, nil, 400, "lines[0].unit_price"},
		{"unknown field", "/api/v1/orders", `{"country":"France","colour":"red"}`, nil, 400, "colour"},
		{"other currency", "/api/v1/orders", `{"country":"France","currency":"EUR","lines":[{"stock_code":"1","quantity":1,"unit_price":"1"}]}`, nil, 400, "currency"},
		{"unknown kind", "/api/v1/orders", `{"country":"France","kind":"gift","lines":[{"stock_code":"1","quantity":1,"unit_price":"1"}]}`, nil, 400, "kind"},
		{"empty body", "/api/v1/orders/" + id + "/pay", ``, nil, 400, "body"},
		{"not JSON", "/api/v1/orders/" + id + "/pay", `{"amount":`, nil, 400, "body"},
		{"body an array", "/api/v1/orders", `[]`, nil, 400, "body"},
		{"body a string", "/api/v1/orders/" + id + "/pay", `"20"`, nil, 400, "body"},
		{"pay without amount", "/api/v1/orders/" + id + "/pay", `{}`, nil, 400, "amount"},
		{"cancel without reason", "/api/v1/orders/" + id + "/cancel", `{}`, nil, 400, "reason"},
		{"field of another command", "/api/v1/orders/" + id + "/ship", `{"amount":"1"}`, nil, 400, "amount"},
		{"If-Match not an ETag", "/api/v1/orders/" + id + "/ship", `{}`, []string{"If-Match", "3"}, 400, "If-Match"},
		{"If-Match on place", "/api/v1/orders", sale20, []string{"If-Match", `"1"`}, 400, "If-Match"},
		{"key too long", "/api/v1/orders", sale20, []string{"Idempotency-Key", strings.Repeat("k", 256)}, 400, "Idempotency-Key"},
		{"too large", "/api/v1/orders", `{"country":"` + strings.Repeat("x", maxCommandBytes) + `"}`, nil, 413, ""},
		{"not JSON content", "/api/v1/orders", sale20, []string{"Content-Type", "text/plain"}, 415, ""},
		{"a type that starts like JSON", "/api/v1/orders", sale20, []string{"Content-Type", "application/jsonx"}, 415, ""},
		{"a malformed content type", "/api/v1/orders", sale20, []string{"Content-Type", "application/json; charset"}, 415, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			w := post(t, h, tt.path, tt.body, tt.header...)
			if w.Code != tt.wantCode {
				t.Fatalf("HTTP %d, want %d: %s", w.Code, tt.wantCode, w.Body)
			}
			p := decodeProblem(t, w)
			if tt.wantParam != "" && (len(p.InvalidParams) == 0 || p.InvalidParams[0].Name != tt.wantParam) {
				t.Fatalf("invalid_params %+v, want %q first", p.InvalidParams, tt.wantParam)
			}
		})
	}
	if n := ws.count(t, `SELECT count(*) FROM orders`); n != 1 {
		t.Errorf("%d orders, want only the first", n)
	}
}

// TestIfMatchTwoClients: two clients pay the same order at version 1 at
// once; exactly one wins, the other gets 412 naming the new version.
func TestIfMatchTwoClients(t *testing.T) {
	t.Parallel()
	ws := newWriteSide(t)
	h := ws.server(t)
	for round := range 5 { // a race: several rounds so that both orders of arrival occur
		id := place(t, h).OrderID
		var wg sync.WaitGroup
		codes := make([]*httptest.ResponseRecorder, 2)
		for i := range codes {
			wg.Add(1)
			go func() {
				defer wg.Done()
				codes[i] = post(t, h, "/api/v1/orders/"+id+"/pay", `{"amount":"20"}`, "If-Match", `"1"`)
			}()
		}
		wg.Wait()
		won, lost := 0, 0
		for _, w := range codes {
			switch w.Code {
			case http.StatusOK:
				won++
			case http.StatusPreconditionFailed:
				lost++
				if p := decodeProblem(t, w); p.Rule != "version-mismatch" || p.CurrentVersion != 2 || w.Header().Get("ETag") != `"2"` {
					t.Fatalf("round %d: 412 %+v ETag %s, want version-mismatch at 2", round, p, w.Header().Get("ETag"))
				}
			default:
				t.Fatalf("round %d: HTTP %d %s", round, w.Code, w.Body)
			}
		}
		if won != 1 || lost != 1 {
			t.Fatalf("round %d: %d won, %d got 412; want one each", round, won, lost)
		}
		if n := ws.count(t, `SELECT count(*) FROM outbox WHERE aggregate_id = $1 AND event_type = 'order.paid'`, id); n != 1 {
			t.Fatalf("round %d: %d order.paid events", round, n)
		}
	}
	// Without If-Match the second payment is re-decided on fresh state: the rule answers.
	id := place(t, h).OrderID
	decodeReceipt(t, post(t, h, "/api/v1/orders/"+id+"/pay", `{"amount":"20"}`), http.StatusOK)
	if w := post(t, h, "/api/v1/orders/"+id+"/ship", `{}`, "If-Match", `"2"`); w.Code != http.StatusOK {
		t.Fatalf("If-Match on the current version: HTTP %d %s", w.Code, w.Body)
	}
}

// TestIdempotencyKey: a retry returns the first response without a second
// effect (also through a restarted server and when the retries race the
// original); the same key with another body is refused.
func TestIdempotencyKey(t *testing.T) {
	t.Parallel()
	ws := newWriteSide(t)
	h := ws.server(t)

	first := post(t, h, "/api/v1/orders", sale20, "Idempotency-Key", "place-1")
	o := decodeReceipt(t, first, http.StatusCreated)
	// Another server on the same database: a restart.
	again := post(t, ws.server(t), "/api/v1/orders", strings.ReplaceAll(sale20, "\n", " "), "Idempotency-Key", `"place-1"`)
	if got := decodeReceipt(t, again, http.StatusCreated); got != o || again.Header().Get("Idempotent-Replayed") != "true" {
		t.Fatalf("retry after restart: %+v (replayed %q), want %+v", got, again.Header().Get("Idempotent-Replayed"), o)
	}
	if first.Header().Get("Idempotent-Replayed") != "" {
		t.Fatal("the first response says it was replayed")
	}
	if n := ws.count(t, `SELECT count(*) FROM orders`); n != 1 {
		t.Fatalf("%d orders after a retried place, want 1", n)
	}
	w := post(t, h, "/api/v1/orders/"+o.OrderID+"/pay", `{"amount":"20"}`, "Idempotency-Key", "place-1")
	if p := decodeProblem(t, w); w.Code != http.StatusUnprocessableEntity || p.Rule != "idempotency-key-reused" {
		t.Fatalf("key of a place reused for a pay: HTTP %d %+v, want 422 idempotency-key-reused", w.Code, p)
	}

	// Racing retries, of a change and of a place: one effect, one answer.
	for _, c := range []struct{ name, path, body string }{
		{"pay", "/api/v1/orders/" + o.OrderID + "/pay", `{"amount":"20"}`},
		{"place", "/api/v1/orders", sale20},
	} {
		const n = 8
		ws := make([]*httptest.ResponseRecorder, n)
		var wg sync.WaitGroup
		for i := range ws {
			wg.Add(1)
			go func() {
				defer wg.Done()
				ws[i] = post(t, h, c.path, c.body, "Idempotency-Key", "race-"+c.name)
			}()
		}
		wg.Wait()
		replayed := 0
		for _, w := range ws[1:] {
			if w.Code != ws[0].Code || w.Body.String() != ws[0].Body.String() {
				t.Fatalf("%s: answers differ: HTTP %d %s and HTTP %d %s", c.name, ws[0].Code, ws[0].Body, w.Code, w.Body)
			}
		}
		for _, w := range ws {
			if w.Header().Get("Idempotent-Replayed") == "true" {
				replayed++
			}
		}
		if ws[0].Code >= 300 || replayed != n-1 {
			t.Fatalf("%s: HTTP %d %s, %d of %d replayed; want success and %d replayed", c.name, ws[0].Code, ws[0].Body, replayed, n, n-1)
		}
	}
	if n := ws.count(t, `SELECT count(*) FROM outbox WHERE event_type = 'order.paid'`); n != 1 {
		t.Errorf("%d order.paid events after racing retries, want 1", n)
	}
	if n := ws.count(t, `SELECT count(*) FROM orders`); n != 2 {
		t.Errorf("%d orders after racing places, want 2", n)
	}
	if n := ws.count(t, `SELECT count(*) FROM idempotency_keys`); n != 3 {
		t.Errorf("%d keys stored, want 3", n)
	}
}

// TestCommandScope: commands need orders:write; a read-only server answers
// 405 to them.
func TestCommandScope(t *testing.T) {
	t.Parallel()
	ws := newWriteSide(t)
	for _, tt := range []struct {
		name   string
		scopes []string
		want   int
	}{
		{"search scope only", []string{ScopeOrdersSearch, ScopeAnalytics}, http.StatusForbidden},
		{"write scope", []string{ScopeOrdersWrite}, http.StatusCreated},
	} {
		t.Run(tt.name, func(t *testing.T) {
			h := ws.server(t, WithAuthenticator(scopes(tt.scopes)))
			w := post(t, h, "/api/v1/orders", sale20)
			if w.Code != tt.want {
				t.Fatalf("HTTP %d, want %d: %s", w.Code, tt.want, w.Body)
			}
			if tt.want == http.StatusForbidden && !strings.Contains(w.Header().Get("WWW-Authenticate"), `scope="orders:write"`) {
				t.Fatalf("WWW-Authenticate %q", w.Header().Get("WWW-Authenticate"))
			}
		})
	}
	h := ws.server(t)
	for _, path := range []string{"/api/v1/orders/o-1/explode", "/api/v1/orders//refund", "/api/v1/analytics/summary"} {
		w := post(t, h, path, `{}`)
		if p := decodeProblem(t, w); w.Code != http.StatusMethodNotAllowed || strings.Contains(p.Detail, "read-only") ||
			!strings.Contains(p.Detail, "POST /api/v1/orders/{id}/pay") {
			t.Fatalf("POST %s to a server with commands: HTTP %d %q, want 405 naming the command endpoints", path, w.Code, p.Detail)
		}
	}
	for _, path := range []string{"/api/v1/orders", "/api/v1/orders/o-1/pay"} {
		if w := get(t, h, path); w.Code != http.StatusMethodNotAllowed || w.Header().Get("Allow") != "POST" {
			t.Fatalf("GET %s to a server with commands: HTTP %d, Allow %q; want 405, Allow: POST", path, w.Code, w.Header().Get("Allow"))
		}
	}
	readOnly := newTestServer(t, &fakeAnalytics{}, &fakeSearch{}).Handler()
	if w := post(t, readOnly, "/api/v1/orders", sale20); w.Code != http.StatusMethodNotAllowed {
		t.Fatalf("read-only server: HTTP %d, want 405", w.Code)
	}
}

// scopes authenticates every request as subject "client" with the given
// scopes.
type scopes []string

func (s scopes) Authenticate(context.Context, *http.Request) (Principal, error) {
	return Principal{Subject: "client", Scopes: s}, nil
}

// TestOpenAPIDocumentsCommands: the command endpoints are in openapi.json
// and its 409/422 answer names every rule the API can answer.
func TestOpenAPIDocumentsCommands(t *testing.T) {
	t.Parallel()
	var doc struct {
		Paths      map[string]map[string]any `json:"paths"`
		Components struct {
			Responses map[string]struct {
				Description string `json:"description"`
			} `json:"responses"`
		} `json:"components"`
	}
	if err := json.Unmarshal(openAPI, &doc); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"/api/v1/orders", "/api/v1/orders/{id}/pay", "/api/v1/orders/{id}/ship", "/api/v1/orders/{id}/cancel", "/api/v1/orders/{id}/refund"} {
		if doc.Paths[p]["post"] == nil {
			t.Errorf("openapi.json does not document POST %s", p)
		}
	}
	rules := doc.Components.Responses["Rule"].Description
	for _, rp := range ruleProblems {
		if rp.status != http.StatusNotFound && !strings.Contains(rules, rp.slug) {
			t.Errorf("openapi.json's Rule response does not name rule %s", rp.slug)
		}
	}
}

// TestOpenAPICommandLimits: the bounds openapi.json states for a command's
// fields are the event contract's (schemas/limits.go), which the aggregate
// enforces: a client validating against the document neither sends what
// the write side refuses nor is kept from what it takes.
func TestOpenAPICommandLimits(t *testing.T) {
	t.Parallel()
	type prop struct {
		MaxLength *int   `json:"maxLength"`
		Minimum   *int64 `json:"minimum"`
		Maximum   *int64 `json:"maximum"`
		MaxItems  *int   `json:"maxItems"`
		Items     struct {
			Properties map[string]prop `json:"properties"`
		} `json:"items"`
	}
	var doc struct {
		Components struct {
			Schemas map[string]struct {
				Properties map[string]prop `json:"properties"`
			} `json:"schemas"`
		} `json:"components"`
	}
	if err := json.Unmarshal(openAPI, &doc); err != nil {
		t.Fatal(err)
	}
	place, change := doc.Components.Schemas["PlaceOrder"].Properties, doc.Components.Schemas["ChangeOrder"].Properties
	line := place["lines"].Items.Properties
	for _, c := range []struct {
		name string
		p    prop
		want int
	}{
		{"PlaceOrder.order_number", place["order_number"], schemas.MaxOrderNumber},
		{"PlaceOrder.customer_id", place["customer_id"], schemas.MaxCustomerID},
		{"PlaceOrder.country", place["country"], schemas.MaxCountry},
		{"PlaceOrder.lines[].stock_code", line["stock_code"], schemas.MaxStockCode},
		{"PlaceOrder.lines[].description", line["description"], schemas.MaxDescription},
		{"ChangeOrder.reference", change["reference"], schemas.MaxReference},
		{"ChangeOrder.carrier", change["carrier"], schemas.MaxCarrier},
		{"ChangeOrder.tracking_number", change["tracking_number"], schemas.MaxTrackingNumber},
		{"ChangeOrder.reason", change["reason"], schemas.MaxReason},
	} {
		if c.p.MaxLength == nil {
			t.Errorf("openapi.json %s: no maxLength, want %d", c.name, c.want)
		} else if *c.p.MaxLength != c.want {
			t.Errorf("openapi.json %s: maxLength %d, want %d", c.name, *c.p.MaxLength, c.want)
		}
	}
	if m := place["lines"].MaxItems; m == nil || *m != schemas.MaxLines {
		t.Errorf("openapi.json PlaceOrder.lines: maxItems %v, want %d", m, schemas.MaxLines)
	}
	if q := line["quantity"]; q.Minimum == nil || q.Maximum == nil || *q.Minimum != -schemas.MaxQuantity || *q.Maximum != schemas.MaxQuantity {
		t.Errorf("openapi.json PlaceOrder.lines[].quantity: minimum %v, maximum %v, want ±%d", q.Minimum, q.Maximum, schemas.MaxQuantity)
	}
}
