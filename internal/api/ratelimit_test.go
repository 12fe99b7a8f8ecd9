package api

import (
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strconv"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// TestFailedAuthenticationRateLimited proves that a client that sent
// authFailBurst rejected tokens gets 429 with Retry-After until its
// allowance refills, that other clients and valid tokens are not limited,
// and that behind a trusted proxy the client is X-Forwarded-For's.
func TestFailedAuthenticationRateLimited(t *testing.T) {
	t.Parallel()
	ti := newTestIssuer(t)
	k := newKey(t, "k1", jose.ES256)
	ti.publish(k)
	proxy := netip.MustParsePrefix("10.0.0.0/8")
	srv, err := New(Config{Auth: AuthOIDC, OIDC: OIDCConfig{Issuer: ti.URL(), Audience: testAudience}, ClientID: "dashboard",
		Analytics: &fakeAnalytics{}, Search: &fakeSearch{}, TrustedProxies: []netip.Prefix{proxy}}, WithLogger(quietLog()))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	srv.fails.now = func() time.Time { return now } // only this goroutine reads it
	h := srv.Handler()
	valid := "Bearer " + sign(t, k, claimsAt(ti.URL(), now, nil))
	send := func(remote, auth string, header ...string) *httptest.ResponseRecorder {
		t.Helper()
		r := httptest.NewRequest(http.MethodGet, "/api/v1/analytics/summary", nil)
		r.RemoteAddr = remote
		r.Header.Set("Authorization", auth)
		for i := 0; i+1 < len(header); i += 2 {
			r.Header.Add(header[i], header[i+1])
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w
	}
	const bad = "Bearer abc.def.ghi"

	for i := range 3 * authFailBurst {
		if w := send("198.51.100.9:1000", valid); w.Code != 200 {
			t.Fatalf("valid token %d: HTTP %d %s; valid tokens must not spend the allowance", i, w.Code, w.Body)
		}
	}
	for i := range authFailBurst {
		if w := send("192.0.2.1:1000", bad); w.Code != 401 {
			t.Fatalf("rejected token %d: HTTP %d; want 401", i, w.Code)
		}
	}
	w := send("192.0.2.1:2000", bad) // another port, same client
	if w.Code != http.StatusTooManyRequests || w.Header().Get("Retry-After") != "1" {
		t.Fatalf("after %d rejected tokens: HTTP %d Retry-After %q; want 429 with Retry-After 1", authFailBurst, w.Code, w.Header().Get("Retry-After"))
	}
	decodeProblem(t, w)
	if w := send("192.0.2.1:2000", valid); w.Code != http.StatusTooManyRequests {
		t.Fatalf("valid token from a limited client: HTTP %d; want 429 (not verified while limited)", w.Code)
	}
	if w := send("192.0.2.2:1000", bad); w.Code != 401 {
		t.Fatalf("another client: HTTP %d; want 401", w.Code)
	}
	now = now.Add(time.Second)
	if w := send("192.0.2.1:1000", valid); w.Code != 200 {
		t.Fatalf("a second later: HTTP %d; want 200", w.Code)
	}

	// IPv6: one /64 is one client.
	for i := range authFailBurst {
		send("[2001:db8::"+strconv.Itoa(i+1)+"]:1000", bad)
	}
	if w := send("[2001:db8::ffff]:1000", bad); w.Code != http.StatusTooManyRequests {
		t.Fatalf("same /64: HTTP %d; want 429", w.Code)
	}

	// Behind the trusted proxy each forwarded client has its own allowance;
	// an untrusted peer's X-Forwarded-For is ignored.
	for range authFailBurst {
		send("10.1.1.1:1000", bad, "X-Forwarded-For", "203.0.113.5, 10.2.2.2")
	}
	if w := send("10.1.1.1:1000", bad, "X-Forwarded-For", "203.0.113.5"); w.Code != http.StatusTooManyRequests {
		t.Fatalf("forwarded client after its burst: HTTP %d; want 429", w.Code)
	}
	if w := send("10.1.1.1:1000", bad, "X-Forwarded-For", "203.0.113.6"); w.Code != 401 {
		t.Fatalf("another forwarded client: HTTP %d; want 401", w.Code)
	}
	if w := send("192.0.2.7:1000", bad, "X-Forwarded-For", "203.0.113.5"); w.Code != 401 {
		t.Fatalf("untrusted peer claiming a limited client: HTTP %d; want 401 (its own allowance)", w.Code)
	}
}
