package e2e

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	jose "github.com/go-jose/go-jose/v4"
	"github.com/shopspring/decimal"

	"github.com/orderstream/orderstream/internal/api"
	"github.com/orderstream/orderstream/internal/web"
)

// TestSignIn runs the dashboard's OAuth 2.0 authorization code flow with
// PKCE in headless Chromium against an in-process OpenID Connect issuer
// (keys generated here; it approves every authorization request), then
// checks that the API served the dashboard with the bearer token it got,
// that the token is in no browser storage, and that the CSP let the page
// talk to the issuer. The read models are fakes: this test is about
// signing in.
func TestSignIn(t *testing.T) {
	chromium := browser(t)
	idp := newIssuer(t)

	const netRevenue = "9747747.934"
	base := startAPI(t, api.Config{
		Auth: api.AuthOIDC, Listen: "127.0.0.1:0",
		OIDC:      api.OIDCConfig{Issuer: idp.URL, Audience: "orderstream-api"},
		ClientID:  "orderstream-dashboard",
		Analytics: fixedAnalytics{net: netRevenue}, Search: emptySearch{},
		UI: web.Files(),
	})

	// Without a token the API refuses.
	resp, err := http.Get(base + "/api/v1/analytics/summary")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("summary without a token: HTTP %d; want 401", resp.StatusCode)
	}

	bctx, problems := newBrowser(t, chromium)
	do(t, bctx, "sign in",
		chromedp.Navigate(base+"/#/analytics"),
		chromedp.WaitVisible(chromedp.CSS("#signin")),
		chromedp.Click(chromedp.CSS("#signin")),
		chromedp.WaitVisible(chromedp.CSS(`#p-kpis[data-state="ready"]`)),
	)
	shown := get(t, bctx, chromedp.AttributeValue(chromedp.CSS("#kpi-net_revenue"), "data-value")).Value
	if shown != netRevenue {
		t.Errorf("net revenue after sign-in %q; want %s", shown, netRevenue)
	}
	loc := get(t, bctx, chromedp.Location())
	if strings.Contains(loc, "code=") || strings.Contains(loc, "state=") || !strings.HasSuffix(loc, "#/analytics") {
		t.Errorf("location after sign-in %q; want the code and state removed and the route kept", loc)
	}
	stored := get(t, bctx, chromedp.Evaluate[string](`JSON.stringify([localStorage, sessionStorage, document.cookie])`))
	if strings.Contains(stored, idp.lastToken()) || stored != `[{},{},""]` {
		t.Errorf("browser storage after sign-in: %s; want nothing stored", stored)
	}
	if got := idp.scopeAsked(); got != "openid analytics:read orders:search" {
		t.Errorf("scope requested %q", got)
	}
	for _, p := range problems() {
		t.Errorf("browser: %s", p)
	}
}

// fixedAnalytics answers every query with the same figures.
type fixedAnalytics struct{ net string }

func (f fixedAnalytics) metrics() api.Metrics {
	d := api.NewAmount(decimal.RequireFromString(f.net))
	return api.Metrics{NetRevenue: d, GrossSales: d, AverageOrderValue: d, Orders: 1, Customers: 1}
}
func (f fixedAnalytics) Summary(context.Context, api.Filter) (api.Summary, error) {
	return api.Summary{Metrics: f.metrics()}, nil
}
func (f fixedAnalytics) Breakdown(_ context.Context, _ api.Filter, d api.Dimension) ([]api.Bucket, error) {
	key := map[api.Dimension]string{api.ByDay: "2011-11-01", api.ByMonth: "2011-11", api.ByCountry: "France"}[d]
	return []api.Bucket{{Key: key, Metrics: f.metrics()}}, nil
}
func (f fixedAnalytics) TopProducts(context.Context, api.Filter, api.ProductOrder, int) ([]api.Product, error) {
	return []api.Product{{StockCode: "85123A", Description: "WHITE HANGING HEART T-LIGHT HOLDER", NetRevenue: f.metrics().NetRevenue, Quantity: 1}}, nil
}
func (f fixedAnalytics) ReturnRate(context.Context, api.Filter) (api.ReturnRate, error) {
	z := api.NewAmount(decimal.Zero)
	return api.ReturnRate{RateCount: z, RateValue: z, Returns: z, GrossSales: f.metrics().GrossSales}, nil
}

type emptySearch struct{}

func (emptySearch) Search(context.Context, api.SearchRequest) (api.SearchResult, error) {
	return api.SearchResult{}, nil
}
func (emptySearch) Get(context.Context, string) (api.Order, error) {
	return api.Order{}, api.ErrNotFound
}

// issuer is a minimal OpenID Connect provider for the browser: discovery,
// JWKS, an authorization endpoint that approves at once, and a token
// endpoint that checks the PKCE verifier (S256) and issues an ES256 access
// token. Discovery and token answer CORS requests as real issuers do.
type issuer struct {
	*httptest.Server
	key *ecdsa.PrivateKey

	mu     sync.Mutex
	codes  map[string]authRequest
	scope  string
	issued string
}

type authRequest struct{ challenge, redirect, client string }

func newIssuer(t *testing.T) *issuer {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	idp := &issuer{key: k, codes: map[string]authRequest{}}
	mux := http.NewServeMux()
	cors := func(w http.ResponseWriter) { w.Header().Set("Access-Control-Allow-Origin", "*") }
	mux.HandleFunc("GET /.well-known/openid-configuration", func(w http.ResponseWriter, _ *http.Request) {
		cors(w)
		_ = json.NewEncoder(w).Encode(map[string]any{
			"issuer": idp.URL, "jwks_uri": idp.URL + "/jwks",
			"authorization_endpoint": idp.URL + "/authorize", "token_endpoint": idp.URL + "/token",
			"code_challenge_methods_supported": []string{"S256"},
		})
	})
	mux.HandleFunc("GET /jwks", func(w http.ResponseWriter, _ *http.Request) {
		_ = json.NewEncoder(w).Encode(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &k.PublicKey, KeyID: "k1", Algorithm: "ES256", Use: "sig"}}})
	})
	mux.HandleFunc("GET /authorize", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		if q.Get("response_type") != "code" || q.Get("code_challenge_method") != "S256" || q.Get("code_challenge") == "" || q.Get("state") == "" {
			http.Error(w, "bad authorization request: "+r.URL.RawQuery, http.StatusBadRequest)
			return
		}
		code := rand.Text()
		idp.mu.Lock()
		idp.codes[code] = authRequest{challenge: q.Get("code_challenge"), redirect: q.Get("redirect_uri"), client: q.Get("client_id")}
		idp.scope = q.Get("scope")
		idp.mu.Unlock()
		back := q.Get("redirect_uri") + "?" + url.Values{"code": {code}, "state": {q.Get("state")}}.Encode()
		http.Redirect(w, r, back, http.StatusFound)
	})
	mux.HandleFunc("OPTIONS /token", func(w http.ResponseWriter, _ *http.Request) {
		cors(w)
		w.Header().Set("Access-Control-Allow-Headers", "Content-Type, Accept")
		w.Header().Set("Access-Control-Allow-Methods", "POST")
	})
	mux.HandleFunc("POST /token", func(w http.ResponseWriter, r *http.Request) {
		cors(w)
		if err := r.ParseForm(); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		idp.mu.Lock()
		req, ok := idp.codes[r.PostForm.Get("code")]
		delete(idp.codes, r.PostForm.Get("code"))
		idp.mu.Unlock()
		sum := sha256.Sum256([]byte(r.PostForm.Get("code_verifier")))
		switch {
		case !ok:
			http.Error(w, `{"error":"invalid_grant"}`, http.StatusBadRequest)
			return
		case base64.RawURLEncoding.EncodeToString(sum[:]) != req.challenge:
			http.Error(w, `{"error":"invalid_grant","error_description":"PKCE verifier does not match"}`, http.StatusBadRequest)
			return
		case r.PostForm.Get("redirect_uri") != req.redirect || r.PostForm.Get("client_id") != req.client ||
			r.PostForm.Get("grant_type") != "authorization_code":
			http.Error(w, `{"error":"invalid_request"}`, http.StatusBadRequest)
			return
		}
		tok := idp.sign(t, req.client)
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"access_token": tok, "token_type": "Bearer", "expires_in": 300})
	})
	idp.Server = httptest.NewServer(mux)
	t.Cleanup(idp.Close)
	return idp
}

func (idp *issuer) sign(t *testing.T, client string) string {
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: jose.JSONWebKey{Key: idp.key, KeyID: "k1"}},
		(&jose.SignerOptions{}).WithType("at+jwt"))
	if err != nil {
		t.Error(err)
		return ""
	}
	now := time.Now()
	idp.mu.Lock()
	scope := idp.scope
	idp.mu.Unlock()
	claims, _ := json.Marshal(map[string]any{
		"iss": idp.URL, "sub": "analyst-1", "aud": "orderstream-api", "azp": client,
		"iat": now.Unix(), "exp": now.Add(5 * time.Minute).Unix(), "scope": scope,
	})
	jws, err := signer.Sign(claims)
	if err != nil {
		t.Error(err)
		return ""
	}
	raw, _ := jws.CompactSerialize()
	idp.mu.Lock()
	idp.issued = raw
	idp.mu.Unlock()
	return raw
}

func (idp *issuer) lastToken() string  { idp.mu.Lock(); defer idp.mu.Unlock(); return idp.issued }
func (idp *issuer) scopeAsked() string { idp.mu.Lock(); defer idp.mu.Unlock(); return idp.scope }
