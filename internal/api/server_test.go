package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

func quietLog() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// newTestServer returns a server in auth mode none on the fakes.
func newTestServer(t *testing.T, a Analytics, s Search, opts ...Option) *Server {
	t.Helper()
	srv, err := New(Config{Auth: AuthNone, Analytics: a, Search: s,
		UI: fstest.MapFS{"index.html": {Data: []byte("<!doctype html><title>orderstream</title>")}}},
		append([]Option{WithLogger(quietLog())}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	return srv
}

func get(t *testing.T, h http.Handler, target string, header ...string) *httptest.ResponseRecorder {
	t.Helper()
	r := httptest.NewRequest(http.MethodGet, target, nil)
	r.Host = "127.0.0.1:8080" // the address --auth=none serves on; a header may override it
	for i := 0; i+1 < len(header); i += 2 {
		if header[i] == "Host" {
			r.Host = header[i+1]
			continue
		}
		r.Header.Set(header[i], header[i+1])
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

func decodeProblem(t *testing.T, w *httptest.ResponseRecorder) Problem {
	t.Helper()
	if ct := w.Header().Get("Content-Type"); ct != "application/problem+json" {
		t.Fatalf("Content-Type %q; want application/problem+json (body %s)", ct, w.Body)
	}
	var p Problem
	if err := json.Unmarshal(w.Body.Bytes(), &p); err != nil {
		t.Fatal(err)
	}
	if p.Status != w.Code {
		t.Fatalf("problem status %d, HTTP %d", p.Status, w.Code)
	}
	return p
}

func TestBadParameters(t *testing.T) {
	t.Parallel()
	h := newTestServer(t, &fakeAnalytics{}, &fakeSearch{}).Handler()
	tests := []struct {
		name      string
		give      string
		wantParam string
		wantIn    string
	}{
		{"bad month", "/api/v1/analytics/summary?from=2011-13-01", "from", `from: "2011-13-01" is not a date YYYY-MM-DD`},
		{"not a date", "/api/v1/analytics/summary?to=yesterday", "to", `"yesterday" is not a date`},
		{"to before from", "/api/v1/analytics/revenue?from=2011-05-01&to=2011-04-30", "to", "is before from"},
		{"bad by", "/api/v1/analytics/revenue?by=week", "by", `"week" is not one of day, month, country`},
		{"top without country", "/api/v1/analytics/revenue?by=day&top=10", "top", "by=country"},
		{"limit too big", "/api/v1/analytics/top-products?limit=1000", "limit", "out of range"},
		{"limit not int", "/api/v1/analytics/top-products?limit=ten", "limit", "not an integer"},
		{"product order", "/api/v1/analytics/top-products?by=price", "by", "not one of revenue, quantity"},
		{"repeated country", "/api/v1/analytics/return-rate?country=EIRE&country=France", "country", "given 2 times"},
		{"unknown channel", "/api/v1/analytics/summary?channel=email", "channel", `"email" is not one of web, phone, marketplace, store, unknown`},
		{"channel in another case", "/api/v1/analytics/top-products?channel=Web", "channel", `"Web" is not one of`},
		{"search channel", "/api/v1/orders/search?channel=none", "channel", `"none" is not one of web, phone, marketplace, store, unknown`},
		{"page size over max", "/api/v1/orders/search?size=101", "size", "out of range; want 1 to 100"},
		{"page size zero", "/orders/search?size=0", "size", "out of range"},
		{"bad kind", "/api/v1/orders/search?kind=refund", "kind", `"refund" is not one of sale, credit_note, adjustment`},
		{"bad sort", "/api/v1/orders/search?sort=price", "sort", "not one of relevance, date, total"},
		{"control char", "/api/v1/orders/search?q=a%00b", "q", "control character"},
		{"text not UTF-8", "/api/v1/orders/search?q=caf%e9", "q", "not valid UTF-8"},
		{"filter not UTF-8", "/api/v1/analytics/summary?country=Fran%ffce", "country", "not valid UTF-8"},
		{"long text", "/api/v1/orders/search?q=" + strings.Repeat("x", 201), "q", "at most 200"},
		{"bad cursor", "/api/v1/orders/search?after=" + strings.Repeat("c", 2000), "after", "cursor"},
		{"misspelt parameter", "/api/v1/analytics/summary?form=2011-01-01", "form", "is not a parameter of this endpoint (it takes channel, country, from, to)"},
		{"search parameter elsewhere", "/api/v1/analytics/top-products?size=5", "size", "it takes by, channel, country, from, limit, to"},
		{"unknown search parameter", "/api/v1/orders/search?page=2", "page", "is not a parameter"},
		{"date before the contract", "/api/v1/analytics/summary?from=0001-01-01", "from", "outside 1970-01-02 to 2105-12-30"},
		{"date after the contract", "/api/v1/orders/search?to=9999-12-31", "to", "outside 1970-01-02 to 2105-12-30"},
		{"epoch day", "/api/v1/analytics/revenue?from=1970-01-01", "from", "outside"},
		{"id longer than the contract", "/api/v1/orders/" + strings.Repeat("é", 129), "id", "neither an order id nor an order number: want 1 to 128 characters"},
		{"id not UTF-8", "/api/v1/orders/a%ffb", "id", "neither an order id"},
		{"id with a control character", "/api/v1/orders/a%01b", "id", "neither an order id"},
		// url.Values drops such a pair without a word: the answer would ignore the filter.
		{"semicolon separator", "/api/v1/analytics/summary?from=2011-12-01;to=2011-12-01", "from", "contains ';'"},
		{"semicolon in a value", "/api/v1/orders/search?sort=total;drop", "sort", "contains ';'"},
		{"bad escape in a value", "/api/v1/orders/search?country=France%zz", "country", `value "France%zz" is not URL-encoded`},
		{"bad escape in a name", "/api/v1/analytics/summary?fr%zzom=2011-12-01", "fr%zzom", "is not URL-encoded"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			w := get(t, h, tt.give)
			if w.Code != http.StatusBadRequest {
				t.Fatalf("HTTP %d; want 400 (body %s)", w.Code, w.Body)
			}
			p := decodeProblem(t, w)
			if len(p.InvalidParams) == 0 || p.InvalidParams[0].Name != tt.wantParam {
				t.Fatalf("invalid_params %+v; want %q first", p.InvalidParams, tt.wantParam)
			}
			if !strings.Contains(p.Detail, tt.wantIn) {
				t.Fatalf("detail %q; want it to contain %q", p.Detail, tt.wantIn)
			}
		})
	}
}

func TestEveryBadParameterNamed(t *testing.T) {
	t.Parallel()
	h := newTestServer(t, &fakeAnalytics{}, &fakeSearch{}).Handler()
	p := decodeProblem(t, get(t, h, "/api/v1/analytics/top-products?from=x&to=y&limit=0&by=z"))
	var names []string
	for _, ip := range p.InvalidParams {
		names = append(names, ip.Name)
	}
	if got := strings.Join(names, ","); got != "from,to,by,limit" {
		t.Fatalf("invalid params %s; want from,to,by,limit", got)
	}
}

func TestFilterReachesQueries(t *testing.T) {
	t.Parallel()
	var got Filter
	a := &fakeAnalytics{SummaryFn: func(_ context.Context, f Filter) (Summary, error) {
		got = f
		return Summary{Metrics{NetRevenue: dec("1.5")}}, nil
	}}
	h := newTestServer(t, a, &fakeSearch{}).Handler()
	w := get(t, h, "/api/v1/analytics/summary?from=2011-03-01&to=2011-03-31&country=EIRE&channel=web")
	if w.Code != 200 {
		t.Fatalf("HTTP %d %s", w.Code, w.Body)
	}
	want := Filter{From: time.Date(2011, 3, 1, 0, 0, 0, 0, time.UTC), To: time.Date(2011, 3, 31, 0, 0, 0, 0, time.UTC), Country: "EIRE", Channel: "web"}
	if got != want {
		t.Fatalf("filter %+v; want %+v", got, want)
	}
	var body map[string]any
	if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil {
		t.Fatal(err)
	}
	if body["net_revenue"] != "1.500" || body["from"] != "2011-03-01" || body["country"] != "EIRE" || body["channel"] != "web" || body["currency"] != "GBP" {
		t.Fatalf("body %s", w.Body)
	}
}

func TestRevenueByChannel(t *testing.T) {
	t.Parallel()
	var gotF Filter
	var gotD Dimension
	a := &fakeAnalytics{BreakdownFn: func(_ context.Context, f Filter, d Dimension) ([]Bucket, error) {
		gotF, gotD = f, d
		return []Bucket{{Key: "unknown", Metrics: Metrics{Orders: 2}}, {Key: "web", Metrics: Metrics{Orders: 1}}}, nil
	}}
	h := newTestServer(t, a, &fakeSearch{}).Handler()
	w := get(t, h, "/api/v1/analytics/revenue?by=channel&country=France")
	if w.Code != 200 {
		t.Fatalf("HTTP %d %s", w.Code, w.Body)
	}
	if gotD != ByChannel || gotF.Country != "France" || gotF.Channel != "" {
		t.Fatalf("breakdown by %q with %+v; want by channel, country France", gotD, gotF)
	}
	if !strings.Contains(w.Body.String(), `"by":"channel"`) || !strings.Contains(w.Body.String(), `"key":"web"`) {
		t.Fatalf("body %s", w.Body)
	}
}

func TestMoneyIsAnExactString(t *testing.T) {
	t.Parallel()
	tests := []struct{ give, want string }{
		{"9747747.934", `"9747747.934"`},
		{"2.55", `"2.550"`},
		{"-0.1", `"-0.100"`},
		{"100", `"100.000"`},
		{"482.5053714700149585", `"482.5053714700149585"`},
		{"0.001", `"0.001"`},
	}
	for _, tt := range tests {
		b, err := json.Marshal(dec(tt.give))
		if err != nil || string(b) != tt.want {
			t.Errorf("Marshal(%s) = %s, %v; want %s", tt.give, b, err, tt.want)
		}
	}
}

func TestRevenueByCountryTopAndRest(t *testing.T) {
	t.Parallel()
	a := &fakeAnalytics{BreakdownFn: func(_ context.Context, _ Filter, d Dimension) ([]Bucket, error) {
		if d != ByCountry {
			return nil, fmt.Errorf("dimension %s", d)
		}
		return []Bucket{
			{Key: "France", Metrics: Metrics{NetRevenue: dec("197403.90"), Orders: 392}},
			{Key: "United Kingdom", Metrics: Metrics{NetRevenue: dec("8187806.364"), Orders: 19857}},
			{Key: "EIRE", Metrics: Metrics{NetRevenue: dec("263276.820"), Orders: 288}},
			{Key: "Germany", Metrics: Metrics{NetRevenue: dec("221698.210"), Orders: 457}},
		}, nil
	}}
	h := newTestServer(t, a, &fakeSearch{}).Handler()
	w := get(t, h, "/api/v1/analytics/revenue?by=country&top=2")
	var body struct {
		Rows []struct {
			Key        string `json:"key"`
			NetRevenue string `json:"net_revenue"`
		} `json:"rows"`
		Rest countryRest `json:"rest"`
	}
	if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil {
		t.Fatalf("%v: %s", err, w.Body)
	}
	if len(body.Rows) != 2 || body.Rows[0].Key != "United Kingdom" || body.Rows[1].Key != "EIRE" {
		t.Fatalf("rows %+v; want United Kingdom, EIRE", body.Rows)
	}
	if body.Rest.Countries != 2 || body.Rest.NetRevenue.String() != "419102.110" || body.Rest.Orders != 849 {
		t.Fatalf("rest %+v; want 2 countries, 419102.110, 849 orders", body.Rest)
	}
}

func TestSearchRequestAndPagination(t *testing.T) {
	t.Parallel()
	var got SearchRequest
	s := &fakeSearch{SearchFn: func(_ context.Context, r SearchRequest) (SearchResult, error) {
		got = r
		return SearchResult{Total: 42, Next: "cursor-2"}, nil
	}}
	h := newTestServer(t, &fakeAnalytics{}, s).Handler()
	w := get(t, h, "/orders/search?q=hanging+heart&product=85123A&country=France&channel=unknown&kind=sale&status=paid&sort=total&after=cursor-1&from=2011-01-01")
	if w.Code != 200 {
		t.Fatalf("HTTP %d %s", w.Code, w.Body)
	}
	want := SearchRequest{Text: "hanging heart", Product: "85123A", Country: "France", Channel: "unknown", Kind: "sale", Status: "paid",
		Sort: "total", After: "cursor-1", Size: DefaultPageSize, From: time.Date(2011, 1, 1, 0, 0, 0, 0, time.UTC)}
	if got != want {
		t.Fatalf("request %+v; want %+v", got, want)
	}
	if !strings.Contains(w.Body.String(), `"next":"cursor-2"`) || !strings.Contains(w.Body.String(), `"hits":[]`) {
		t.Fatalf("body %s", w.Body)
	}
	get(t, h, "/api/v1/orders/search?size=100")
	if got.Size != MaxPageSize {
		t.Fatalf("size %d; want %d", got.Size, MaxPageSize)
	}
}

func TestOrderDetail(t *testing.T) {
	t.Parallel()
	s := &fakeSearch{GetFn: func(_ context.Context, id string) (Order, error) {
		if id == "missing" {
			return Order{}, fmt.Errorf("get %s: %w", id, ErrNotFound)
		}
		return Order{OrderSummary: OrderSummary{ID: id}, Lines: []OrderLine{{UnitPrice: dec("0.001")}}}, nil
	}}
	h := newTestServer(t, &fakeAnalytics{}, s).Handler()
	if w := get(t, h, "/api/v1/orders/abc"); w.Code != 200 || !strings.Contains(w.Body.String(), `"unit_price":"0.001"`) {
		t.Fatalf("HTTP %d %s", w.Code, w.Body)
	}
	w := get(t, h, "/api/v1/orders/missing")
	if w.Code != 404 || !strings.Contains(decodeProblem(t, w).Detail, `"missing"`) {
		t.Fatalf("HTTP %d %s; want 404 naming the id", w.Code, w.Body)
	}
}

func TestBackendErrors(t *testing.T) {
	t.Parallel()
	a := &fakeAnalytics{
		SummaryFn: func(context.Context, Filter) (Summary, error) {
			return Summary{}, errors.New("dial tcp 127.0.0.1:59000: connection refused (password=hunter2)")
		},
		ReturnRateFn: func(ctx context.Context, _ Filter) (ReturnRate, error) {
			<-ctx.Done()
			return ReturnRate{}, ctx.Err()
		},
	}
	srv, err := New(Config{Auth: AuthNone, Analytics: a, Search: &fakeSearch{}, RequestTimeout: 50 * time.Millisecond},
		WithLogger(quietLog()))
	if err != nil {
		t.Fatal(err)
	}
	w := get(t, srv.Handler(), "/api/v1/analytics/summary")
	if w.Code != 503 || strings.Contains(w.Body.String(), "hunter2") || strings.Contains(w.Body.String(), "59000") {
		t.Fatalf("HTTP %d %s; want 503 without internals", w.Code, w.Body)
	}
	w = get(t, srv.Handler(), "/api/v1/analytics/return-rate")
	if w.Code != 504 {
		t.Fatalf("HTTP %d %s; want 504 after the request deadline", w.Code, w.Body)
	}
}

func TestSecurityHeaders(t *testing.T) {
	t.Parallel()
	h := newTestServer(t, &fakeAnalytics{}, &fakeSearch{}).Handler()
	for _, path := range []string{"/", "/api/v1/analytics/summary", "/api/v1/nope", "/openapi.json", "/api/v1/analytics/summary?from=x"} {
		w := get(t, h, path)
		hd := w.Header()
		csp := hd.Get("Content-Security-Policy")
		if !strings.Contains(csp, "frame-ancestors 'none'") || !strings.Contains(csp, "script-src 'self'") || strings.Contains(csp, "unsafe-inline") {
			t.Errorf("%s: CSP %q", path, csp)
		}
		if hd.Get("X-Content-Type-Options") != "nosniff" || hd.Get("Referrer-Policy") != "no-referrer" || hd.Get("X-Frame-Options") != "DENY" {
			t.Errorf("%s: headers %v", path, hd)
		}
	}
}

func TestLimits(t *testing.T) {
	t.Parallel()
	h := newTestServer(t, &fakeAnalytics{}, &fakeSearch{}).Handler()
	if w := get(t, h, "/api/v1/orders/search?q="+strings.Repeat("a", 5000)); w.Code != http.StatusRequestURITooLong {
		t.Errorf("long query: HTTP %d; want 414", w.Code)
	}
	r := httptest.NewRequest(http.MethodPost, "/api/v1/orders/search", strings.NewReader("{}"))
	r.Host = "localhost"
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	if w.Code != 405 || w.Header().Get("Allow") != "GET, HEAD" {
		t.Errorf("POST: HTTP %d; want 405 with Allow", w.Code)
	}
	decodeProblem(t, w)
	if w := get(t, h, "/api/v1/nope"); w.Code != 404 {
		t.Errorf("unknown endpoint: HTTP %d; want 404", w.Code)
	} else {
		decodeProblem(t, w)
	}
}

func TestPublicEndpoints(t *testing.T) {
	t.Parallel()
	h := newTestServer(t, &fakeAnalytics{}, &fakeSearch{}).Handler()
	w := get(t, h, "/openapi.json")
	var doc struct {
		OpenAPI string         `json:"openapi"`
		Paths   map[string]any `json:"paths"`
	}
	if err := json.Unmarshal(w.Body.Bytes(), &doc); err != nil || !strings.HasPrefix(doc.OpenAPI, "3.") {
		t.Fatalf("openapi.json: %v %.100s", err, w.Body)
	}
	for _, p := range []string{"/api/v1/analytics/summary", "/api/v1/analytics/revenue", "/api/v1/analytics/top-products",
		"/api/v1/analytics/return-rate", "/api/v1/orders/search", "/orders/search", "/api/v1/orders/{id}", "/api/v1/config", "/healthz", "/readyz", "/metrics"} {
		if doc.Paths[p] == nil {
			t.Errorf("openapi.json does not document %s", p)
		}
	}
	if w := get(t, h, "/healthz"); w.Code != 200 {
		t.Errorf("healthz: HTTP %d", w.Code)
	}
	if w := get(t, h, "/"); w.Code != 200 || !strings.Contains(w.Body.String(), "<title>orderstream") {
		t.Errorf("dashboard: HTTP %d %s", w.Code, w.Body)
	}
	if w := get(t, h, "/api/v1/config"); !strings.Contains(w.Body.String(), `"auth":"none"`) {
		t.Errorf("config: %s", w.Body)
	}
}

// TestAuthNoneAnswersLoopbackHostsOnly proves the defence against DNS
// rebinding: with --auth=none a request naming any other host is refused
// before it reaches a handler.
func TestAuthNoneAnswersLoopbackHostsOnly(t *testing.T) {
	t.Parallel()
	h := newTestServer(t, &fakeAnalytics{}, &fakeSearch{}).Handler()
	tests := []struct {
		give string
		want int
	}{
		{"localhost", 200},
		{"LOCALHOST:8080", 200},
		{"127.0.0.1:8080", 200},
		{"127.1.2.3", 200},
		{"[::1]:8080", 200},
		{"[::1]", 200},
		{"attacker.example", 421},
		{"attacker.example:8080", 421},
		{"localhost.attacker.example", 421},
		{"127.0.0.1.nip.io:8080", 421},
		{"0.0.0.0:8080", 421},
		{"192.168.1.10:8080", 421},
		{"", 421},
	}
	for _, tt := range tests {
		t.Run(tt.give, func(t *testing.T) {
			t.Parallel()
			w := get(t, h, "/api/v1/analytics/summary", "Host", tt.give)
			if w.Code != tt.want {
				t.Fatalf("Host %q: HTTP %d %s; want %d", tt.give, w.Code, w.Body, tt.want)
			}
			if tt.want == 421 && !strings.Contains(decodeProblem(t, w).Detail, "not a loopback name") {
				t.Fatalf("Host %q: body %s does not say why", tt.give, w.Body)
			}
		})
	}
	// With OIDC the token, not the Host header, decides.
	ti := newTestIssuer(t)
	srv, err := New(Config{Auth: AuthOIDC, OIDC: OIDCConfig{Issuer: ti.URL(), Audience: testAudience}, ClientID: "dashboard",
		Analytics: &fakeAnalytics{}, Search: &fakeSearch{}}, WithLogger(quietLog()))
	if err != nil {
		t.Fatal(err)
	}
	if w := get(t, srv.Handler(), "/healthz", "Host", "api.example.com"); w.Code != 200 {
		t.Fatalf("--auth=oidc, Host api.example.com: HTTP %d %s; want 200", w.Code, w.Body)
	}
}

func TestAuthNoneRefusesNonLoopback(t *testing.T) {
	t.Parallel()
	tests := []struct {
		give    string
		wantErr bool
	}{
		{"127.0.0.1:8080", false},
		{"localhost:8080", false},
		{"[::1]:8080", false},
		{"127.0.0.2:0", false},
		{":8080", true},
		{"0.0.0.0:8080", true},
		{"[::]:8080", true},
		{"192.168.1.10:8080", true},
		{"example.com:80", true},
	}
	for _, tt := range tests {
		_, err := New(Config{Auth: AuthNone, Listen: tt.give, Analytics: &fakeAnalytics{}, Search: &fakeSearch{}})
		if (err != nil) != tt.wantErr {
			t.Errorf("--auth=none --listen %s: err %v; want error %v", tt.give, err, tt.wantErr)
		}
		if err != nil && !strings.Contains(err.Error(), "loopback") {
			t.Errorf("--listen %s: error %q does not say why", tt.give, err)
		}
	}
}

func TestConfigValidateJoinsErrors(t *testing.T) {
	t.Parallel()
	_, err := New(Config{Auth: AuthOIDC, Listen: "nohostport"})
	if err == nil {
		t.Fatal("want errors")
	}
	for _, w := range []string{"--listen", "--oidc-issuer", "--oidc-audience", "--oidc-client-id", "Analytics", "Search"} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error lacks %s: %v", w, err)
		}
	}
}

func TestAuthNoneLogsWarningOnStart(t *testing.T) {
	t.Parallel()
	logs := &syncWriter{}
	srv, err := New(Config{Auth: AuthNone, Listen: "127.0.0.1:0", Analytics: &fakeAnalytics{}, Search: &fakeSearch{}},
		WithLogger(slog.New(slog.NewTextHandler(logs, nil))))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(logs.String(), "serving API") && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if out := logs.String(); !strings.Contains(out, "level=WARN") || !strings.Contains(out, "AUTHENTICATION IS OFF") {
		t.Fatalf("logs %q; want a warning that auth is off", out)
	}
	if err := srv.Close(); err != nil {
		t.Fatal(err)
	}
	if err := srv.Close(); err != nil {
		t.Fatal("second Close:", err)
	}
}

// TestScopes runs the API with the real OIDC verifier against the
// in-process issuer.
func TestScopes(t *testing.T) {
	t.Parallel()
	ti := newTestIssuer(t)
	k := newKey(t, "k1", jose.ES256)
	ti.publish(k)
	srv, err := New(Config{Auth: AuthOIDC, OIDC: OIDCConfig{Issuer: ti.URL(), Audience: testAudience}, ClientID: "dashboard",
		Analytics: &fakeAnalytics{}, Search: &fakeSearch{}}, WithLogger(quietLog()))
	if err != nil {
		t.Fatal(err)
	}
	h := srv.Handler()
	now := time.Now()
	tok := func(scope string) string {
		return "Bearer " + sign(t, k, claimsAt(ti.URL(), now, map[string]any{"scope": scope}))
	}
	tests := []struct {
		name       string
		path       string
		auth       string
		wantStatus int
		wantChal   string // substring of WWW-Authenticate
	}{
		{"no token", "/api/v1/analytics/summary", "", 401, `Bearer realm="orderstream", scope="analytics:read"`},
		{"not bearer", "/api/v1/analytics/summary", "Basic dXNlcjpwdw==", 401, `error="invalid_token"`},
		{"bad token", "/api/v1/analytics/summary", "Bearer abc.def.ghi", 401, `error="invalid_token"`},
		{"analytics ok", "/api/v1/analytics/summary", tok("analytics:read"), 200, ""},
		{"analytics without scope", "/api/v1/analytics/revenue", tok("orders:search"), 403, `error="insufficient_scope", scope="analytics:read"`},
		{"search ok", "/api/v1/orders/search", tok("orders:search"), 200, ""},
		{"search alias ok", "/orders/search", tok("openid orders:search"), 200, ""},
		{"search without scope", "/api/v1/orders/search", tok("analytics:read"), 403, `scope="orders:search"`},
		{"order detail without scope", "/api/v1/orders/x", tok("analytics:read"), 403, `insufficient_scope`},
		{"public config", "/api/v1/config", "", 200, ""},
		{"public dashboard-less root", "/healthz", "", 200, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := get(t, h, tt.path, "Authorization", tt.auth)
			if w.Code != tt.wantStatus {
				t.Fatalf("HTTP %d; want %d (%s)", w.Code, tt.wantStatus, w.Body)
			}
			if tt.wantChal != "" && !strings.Contains(w.Header().Get("WWW-Authenticate"), tt.wantChal) {
				t.Fatalf("WWW-Authenticate %q; want %q", w.Header().Get("WWW-Authenticate"), tt.wantChal)
			}
			if w.Code >= 400 {
				decodeProblem(t, w)
			}
		})
	}
	w := get(t, h, "/api/v1/config")
	if !strings.Contains(w.Body.String(), `"client_id":"dashboard"`) || !strings.Contains(w.Body.String(), ti.URL()) {
		t.Fatalf("config %s", w.Body)
	}
	if csp := w.Header().Get("Content-Security-Policy"); !strings.Contains(csp, "connect-src 'self' "+ti.URL()) {
		t.Fatalf("CSP %q does not allow the issuer for the browser's token request", csp)
	}
}

// TestCSPAllowsDiscoveredTokenEndpoint proves that the dashboard can sign
// in with a provider whose token endpoint lives on another origin than the
// issuer: once discovered, that origin (and only an https or loopback one)
// joins connect-src.
func TestCSPAllowsDiscoveredTokenEndpoint(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, give, want, wantNot string
	}{
		{"other https origin", "https://login.example.net:8443/oauth2/token", "https://login.example.net:8443", ""},
		{"plain http elsewhere", "http://login.example.net/oauth2/token", "", "login.example.net"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ti := newTestIssuer(t)
			ti.tokenURL = tt.give
			srv, err := New(Config{Auth: AuthOIDC, OIDC: OIDCConfig{Issuer: ti.URL(), Audience: testAudience}, ClientID: "dashboard",
				Analytics: &fakeAnalytics{}, Search: &fakeSearch{}}, WithLogger(quietLog()))
			if err != nil {
				t.Fatal(err)
			}
			if err := srv.oidc.Discover(context.Background()); err != nil {
				t.Fatal(err)
			}
			csp := get(t, srv.Handler(), "/").Header().Get("Content-Security-Policy")
			connect := ""
			for _, d := range strings.Split(csp, ";") {
				if f := strings.Fields(d); len(f) > 0 && f[0] == "connect-src" {
					connect = strings.Join(f[1:], " ")
				}
			}
			if !strings.HasPrefix(connect, "'self' "+ti.URL()) {
				t.Fatalf("connect-src %q; want 'self' and the issuer %s first", connect, ti.URL())
			}
			if tt.want != "" && !slices.Contains(strings.Fields(connect), tt.want) {
				t.Fatalf("connect-src %q; want it to allow the token endpoint's origin %s", connect, tt.want)
			}
			if tt.wantNot != "" && strings.Contains(connect, tt.wantNot) {
				t.Fatalf("connect-src %q allows %s", connect, tt.wantNot)
			}
		})
	}
}

func TestSearchInvalidRequestIs400(t *testing.T) {
	t.Parallel()
	s := &fakeSearch{SearchFn: func(context.Context, SearchRequest) (SearchResult, error) {
		return SearchResult{}, fmt.Errorf("%w: after: cursor of another sort order", ErrInvalidRequest)
	}}
	h := newTestServer(t, &fakeAnalytics{}, s).Handler()
	w := get(t, h, "/api/v1/orders/search?after=abc&sort=total")
	if w.Code != 400 || !strings.Contains(decodeProblem(t, w).Detail, "cursor of another sort order") {
		t.Fatalf("HTTP %d %s; want 400 with the read model's reason", w.Code, w.Body)
	}
}

func TestDashboardGzip(t *testing.T) {
	t.Parallel()
	ui := fstest.MapFS{
		"index.html":    {Data: []byte("<!doctype html>")},
		"app.js":        {Data: []byte("console.log(1)")},
		"app.js.gz":     {Data: []byte("\x1f\x8bcompressed")},
		"sub/other.txt": {Data: []byte("x")},
	}
	srv, err := New(Config{Auth: AuthNone, Analytics: &fakeAnalytics{}, Search: &fakeSearch{}, UI: ui}, WithLogger(quietLog()))
	if err != nil {
		t.Fatal(err)
	}
	h := srv.Handler()
	w := get(t, h, "/app.js", "Accept-Encoding", "gzip, br")
	if w.Header().Get("Content-Encoding") != "gzip" || !strings.HasPrefix(w.Header().Get("Content-Type"), "text/javascript") || w.Body.String() != "\x1f\x8bcompressed" {
		t.Fatalf("gzip: %v %q", w.Header(), w.Body)
	}
	w = get(t, h, "/app.js")
	if w.Header().Get("Content-Encoding") != "" || w.Body.String() != "console.log(1)" {
		t.Fatalf("identity: %v %q", w.Header(), w.Body)
	}
	if w := get(t, h, "/../../etc/passwd", "Accept-Encoding", "gzip"); w.Code == 200 && strings.Contains(w.Body.String(), "root:") {
		t.Fatal("path traversal")
	}
}

func TestUnknownCountryIs400(t *testing.T) {
	t.Parallel()
	unknown := func(f Filter) error {
		if f.Country != "France" {
			return fmt.Errorf("country %q: %w", f.Country, ErrUnknownCountry)
		}
		return nil
	}
	a := &fakeAnalytics{
		SummaryFn: func(_ context.Context, f Filter) (Summary, error) { return Summary{}, unknown(f) },
		BreakdownFn: func(_ context.Context, f Filter, _ Dimension) ([]Bucket, error) {
			return nil, unknown(f)
		},
		TopProductsFn: func(_ context.Context, f Filter, _ ProductOrder, _ int) ([]Product, error) {
			return nil, unknown(f)
		},
		ReturnRateFn: func(_ context.Context, f Filter) (ReturnRate, error) { return ReturnRate{}, unknown(f) },
	}
	h := newTestServer(t, a, &fakeSearch{}).Handler()
	for _, path := range []string{"summary", "revenue", "top-products", "return-rate"} {
		w := get(t, h, "/api/v1/analytics/"+path+"?country=Frnace")
		if w.Code != 400 {
			t.Fatalf("%s: HTTP %d %s; want 400", path, w.Code, w.Body)
		}
		p := decodeProblem(t, w)
		want := `"Frnace": no such country in the read model (countries are as in the data, case-sensitive, e.g. "France", "EIRE", "United Kingdom")`
		if len(p.InvalidParams) != 1 || p.InvalidParams[0].Name != "country" || p.InvalidParams[0].Reason != want {
			t.Fatalf("%s: invalid params %+v; want country: %s", path, p.InvalidParams, want)
		}
		if w := get(t, h, "/api/v1/analytics/"+path+"?country=France"); w.Code != 200 {
			t.Fatalf("%s: known country: HTTP %d %s", path, w.Code, w.Body)
		}
	}
}

func TestSearchParamErrorNamesParam(t *testing.T) {
	t.Parallel()
	s := &fakeSearch{SearchFn: func(context.Context, SearchRequest) (SearchResult, error) {
		return SearchResult{}, errors.Join(&ParamError{Name: "after", Reason: `cursor "garbage" is not a Next value of this API`},
			&ParamError{Name: "country", Reason: `country "Frnace" is in no order`})
	}}
	h := newTestServer(t, &fakeAnalytics{}, s).Handler()
	w := get(t, h, "/api/v1/orders/search?after=garbage&country=Frnace")
	p := decodeProblem(t, w)
	if w.Code != 400 || len(p.InvalidParams) != 2 || p.InvalidParams[0].Name != "after" || p.InvalidParams[1].Name != "country" {
		t.Fatalf("HTTP %d %s; want 400 with invalid_params after and country", w.Code, w.Body)
	}
	if strings.Count(p.Detail, "invalid search request") > 0 || !strings.Contains(p.Detail, `"garbage"`) {
		t.Fatalf("detail %q; want the reasons without the error prefix", p.Detail)
	}
}

// TestHSTSOverTLSOnly proves that Strict-Transport-Security is sent on
// responses over TLS and never over plain http (where browsers ignore it
// and a local --auth=none server must stay reachable).
func TestHSTSOverTLSOnly(t *testing.T) {
	t.Parallel()
	h := newTestServer(t, &fakeAnalytics{}, &fakeSearch{}).Handler()
	if got := get(t, h, "https://localhost/healthz").Header().Get("Strict-Transport-Security"); !strings.HasPrefix(got, "max-age=31536000") {
		t.Errorf("over TLS: Strict-Transport-Security %q; want max-age=31536000", got)
	}
	if got := get(t, h, "http://localhost/healthz").Header().Get("Strict-Transport-Security"); got != "" {
		t.Errorf("over http: Strict-Transport-Security %q; want none", got)
	}
	if got := get(t, h, "/healthz", "X-Forwarded-Proto", "https").Header().Get("Strict-Transport-Security"); got != "" {
		t.Errorf("X-Forwarded-Proto from an untrusted peer: Strict-Transport-Security %q; want none", got)
	}
	// httptest's peer is 192.0.2.1: behind a trusted proxy that terminated TLS.
	proxied := newTestServer(t, &fakeAnalytics{}, &fakeSearch{})
	proxied.cfg.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24")}
	if got := get(t, proxied.Handler(), "/healthz", "X-Forwarded-Proto", "https").Header().Get("Strict-Transport-Security"); got == "" {
		t.Error("X-Forwarded-Proto: https from a trusted proxy: no Strict-Transport-Security")
	}
}
