package api

import (
	"context"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

const testAudience = "https://api.orderstream.test"

// fakeClock is a settable clock for exp/nbf and the JWKS refresh interval.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func newVerifier(t *testing.T, ti *testIssuer, clock *fakeClock) *OIDC {
	t.Helper()
	o, err := NewOIDC(OIDCConfig{Issuer: ti.URL(), Audience: testAudience, Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	return o
}

// claimsAt returns valid claims at now, with overrides applied (a nil value
// deletes the claim).
func claimsAt(iss string, now time.Time, over map[string]any) map[string]any {
	c := map[string]any{
		"iss":   iss,
		"sub":   "user-1",
		"aud":   []string{testAudience},
		"exp":   now.Add(5 * time.Minute).Unix(),
		"iat":   now.Unix(),
		"nbf":   now.Add(-time.Minute).Unix(),
		"scope": "openid analytics:read",
		"azp":   "dashboard",
	}
	for k, v := range over {
		if v == nil {
			delete(c, k)
		} else {
			c[k] = v
		}
	}
	return c
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

func TestOIDCVerify(t *testing.T) {
	t.Parallel()
	ti := newTestIssuer(t)
	rsaKey := newKey(t, "rsa-1", jose.RS256)
	ecKey := newKey(t, "ec-1", jose.ES256)
	ghost := newKey(t, "ghost", jose.RS256) // never published
	ti.publish(rsaKey, ecKey)
	now := time.Now().Truncate(time.Second)
	iss := ti.URL()

	pubDER, err := x509.MarshalPKIXPublicKey(rsaKey.pub)
	if err != nil {
		t.Fatal(err)
	}
	pubPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER})

	tests := []struct {
		name    string
		give    func() string
		want    []string // scopes, when accepted
		wantErr string   // substring of the TokenError reason
	}{
		{name: "valid RS256", give: func() string { return sign(t, rsaKey, claimsAt(iss, now, nil)) },
			want: []string{"openid", "analytics:read"}},
		{name: "valid ES256", give: func() string { return sign(t, ecKey, claimsAt(iss, now, nil)) },
			want: []string{"openid", "analytics:read"}},
		{name: "scp array", give: func() string {
			return sign(t, ecKey, claimsAt(iss, now, map[string]any{"scope": nil, "scp": []string{"orders:search"}}))
		}, want: []string{"orders:search"}},
		{name: "expired beyond leeway", give: func() string {
			return sign(t, rsaKey, claimsAt(iss, now, map[string]any{"exp": now.Add(-61 * time.Second).Unix()}))
		}, wantErr: "expired"},
		{name: "expired within leeway", give: func() string {
			return sign(t, rsaKey, claimsAt(iss, now, map[string]any{"exp": now.Add(-30 * time.Second).Unix()}))
		}, want: []string{"openid", "analytics:read"}},
		{name: "no exp", give: func() string {
			return sign(t, rsaKey, claimsAt(iss, now, map[string]any{"exp": nil}))
		}, wantErr: "no exp"},
		{name: "exp a string of digits", give: func() string {
			return sign(t, rsaKey, claimsAt(iss, now, map[string]any{"exp": strconv.FormatInt(now.Add(time.Hour).Unix(), 10)}))
		}, wantErr: "expected types"},
		{name: "exp beyond any date", give: func() string {
			return sign(t, rsaKey, claimsAt(iss, now, map[string]any{"exp": json.Number("1e300")}))
		}, wantErr: "expected types"},
		{name: "exp a boolean", give: func() string {
			return sign(t, rsaKey, claimsAt(iss, now, map[string]any{"exp": true}))
		}, wantErr: "unmarshal claims"},
		{name: "nbf a string", give: func() string {
			return sign(t, rsaKey, claimsAt(iss, now, map[string]any{"nbf": "0"}))
		}, wantErr: "expected types"},
		{name: "not yet valid", give: func() string {
			return sign(t, rsaKey, claimsAt(iss, now, map[string]any{"nbf": now.Add(2 * time.Minute).Unix()}))
		}, wantErr: "not valid before"},
		{name: "wrong issuer", give: func() string {
			return sign(t, rsaKey, claimsAt(iss, now, map[string]any{"iss": "https://evil.example"}))
		}, wantErr: "different provider"},
		{name: "wrong audience", give: func() string {
			return sign(t, rsaKey, claimsAt(iss, now, map[string]any{"aud": "https://other.api"}))
		}, wantErr: "audience"},
		{name: "unknown kid", give: func() string { return sign(t, ghost, claimsAt(iss, now, nil)) },
			wantErr: `unknown key id "ghost"`},
		{name: "known kid, wrong key", give: func() string {
			k := ghost
			k.kid = rsaKey.kid
			return sign(t, k, claimsAt(iss, now, nil))
		}, wantErr: "signature does not verify"},
		{name: "alg none", give: func() string {
			h, _ := json.Marshal(map[string]any{"alg": "none", "kid": rsaKey.kid, "typ": "JWT"})
			p, _ := json.Marshal(claimsAt(iss, now, nil))
			return b64(h) + "." + b64(p) + "."
		}, wantErr: "malformed jwt"},
		{name: "HS256 signed with the public key", give: func() string {
			signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.HS256, Key: pubPEM},
				(&jose.SignerOptions{}).WithHeader("kid", rsaKey.kid))
			if err != nil {
				t.Fatal(err)
			}
			p, _ := json.Marshal(claimsAt(iss, now, nil))
			jws, err := signer.Sign(p)
			if err != nil {
				t.Fatal(err)
			}
			raw, _ := jws.CompactSerialize()
			return raw
		}, wantErr: "malformed jwt"},
		{name: "RS256 header on an ES256 key's kid", give: func() string {
			k := rsaKey
			k.kid = ecKey.kid
			return sign(t, k, claimsAt(iss, now, nil))
		}, wantErr: "signature does not verify"},
		{name: "garbage", give: func() string { return "not.a.jwt" }, wantErr: "malformed jwt"},
	}
	clock := &fakeClock{t: now}
	v := newVerifier(t, ti, clock)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := v.Verify(context.Background(), tt.give())
			if tt.wantErr != "" {
				var te *TokenError
				if !errors.As(err, &te) {
					t.Fatalf("Verify = %+v, %v; want a TokenError containing %q", p, err, tt.wantErr)
				}
				if !strings.Contains(te.Reason, tt.wantErr) {
					t.Fatalf("reason %q; want it to contain %q", te.Reason, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if p.Subject != "user-1" || strings.Join(p.Scopes, " ") != strings.Join(tt.want, " ") {
				t.Fatalf("principal = %+v; want sub user-1, scopes %v", p, tt.want)
			}
		})
	}
}

func TestOIDCKeyRotation(t *testing.T) {
	t.Parallel()
	ti := newTestIssuer(t)
	old, next := newKey(t, "2024-old", jose.RS256), newKey(t, "2025-new", jose.ES256)
	ti.publish(old)
	clock := &fakeClock{t: time.Now().Truncate(time.Second)}
	v := newVerifier(t, ti, clock)
	ctx := context.Background()

	if _, err := v.Verify(ctx, sign(t, old, claimsAt(ti.URL(), clock.Now(), nil))); err != nil {
		t.Fatalf("token of the published key: %v", err)
	}
	if got := ti.jwksHits.Load(); got != 1 {
		t.Fatalf("JWKS fetched %d times; want 1", got)
	}
	// Cached: a second token does not fetch again.
	if _, err := v.Verify(ctx, sign(t, old, claimsAt(ti.URL(), clock.Now(), nil))); err != nil {
		t.Fatal(err)
	}
	if got := ti.jwksHits.Load(); got != 1 {
		t.Fatalf("JWKS fetched %d times after a cached kid; want 1", got)
	}

	ti.publish(next) // the issuer rotates
	clock.Advance(DefaultKeyRefreshInterval)
	p, err := v.Verify(ctx, sign(t, next, claimsAt(ti.URL(), clock.Now(), nil)))
	if err != nil {
		t.Fatalf("token of the rotated-in key after refetch: %v", err)
	}
	if p.Subject != "user-1" {
		t.Fatalf("principal %+v", p)
	}
	if got := ti.jwksHits.Load(); got != 2 {
		t.Fatalf("JWKS fetched %d times; want 2 (one refetch on the unknown kid)", got)
	}
	// The retired key is gone after the refetch.
	if _, err := v.Verify(ctx, sign(t, old, claimsAt(ti.URL(), clock.Now(), nil))); err == nil {
		t.Fatal("token of the retired key accepted")
	}

	// Forged kids within the refresh interval cause no further fetch.
	ghost := newKey(t, "ghost", jose.RS256)
	for range 5 {
		if _, err := v.Verify(ctx, sign(t, ghost, claimsAt(ti.URL(), clock.Now(), nil))); err == nil {
			t.Fatal("token of an unknown key accepted")
		}
	}
	if got := ti.jwksHits.Load(); got > 3 {
		t.Fatalf("JWKS fetched %d times; want at most 3 (refetches are rate-limited)", got)
	}
}

// TestOIDCKeysRefreshedByAge: the JWKS is fetched again once older than the
// issuer's max-age, which forgets a key the issuer removed; while that
// refresh fails the cached keys keep verifying and an unknown kid answers
// unavailable, not 401.
func TestOIDCKeysRefreshedByAge(t *testing.T) {
	t.Parallel()
	ti := newTestIssuer(t)
	old, next := newKey(t, "old", jose.RS256), newKey(t, "next", jose.ES256)
	ti.mu.Lock()
	ti.cacheControl = "public, max-age=60"
	ti.mu.Unlock()
	ti.publish(old, next)
	clock := &fakeClock{t: time.Now().Truncate(time.Second)}
	v := newVerifier(t, ti, clock)
	ctx := context.Background()
	verify := func(k signingKey) error {
		t.Helper()
		_, err := v.Verify(ctx, sign(t, k, claimsAt(ti.URL(), clock.Now(), nil)))
		return err
	}
	hits := func(want int32) {
		t.Helper()
		if got := ti.jwksHits.Load(); got != want {
			t.Fatalf("JWKS fetched %d times; want %d", got, want)
		}
	}

	if err := verify(old); err != nil {
		t.Fatal(err)
	}
	hits(1)
	ti.publish(next) // the issuer removes old
	clock.Advance(59 * time.Second)
	if err := verify(old); err != nil {
		t.Fatalf("within max-age the cached key verifies: %v", err)
	}
	hits(1)

	clock.Advance(time.Second) // max-age reached
	var te *TokenError
	if err := verify(old); !errors.As(err, &te) {
		t.Fatalf("token of the removed key after max-age = %v; want a token error", err)
	}
	hits(2)
	if err := verify(next); err != nil {
		t.Fatal(err)
	}
	hits(2)

	ti.mu.Lock()
	ti.jwksDown = true
	ti.mu.Unlock()
	clock.Advance(time.Minute)
	if err := verify(next); err != nil {
		t.Fatalf("cached key while the refresh fails: %v", err)
	}
	hits(3)
	if err := verify(newKey(t, "ghost", jose.RS256)); err == nil || errors.As(err, &te) {
		t.Fatalf("unknown kid while the JWKS is down = %v; want an unavailability error", err)
	}
	hits(3) // within KeyRefreshInterval of the failed refresh
}

func TestKeyMaxAge(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	date := now.Add(-time.Minute).Format(http.TimeFormat)
	tests := []struct {
		name string
		give map[string]string
		want time.Duration
	}{
		{"no caching headers", nil, DefaultKeyMaxAge},
		{"max-age", map[string]string{"Cache-Control": "public, max-age=300, must-revalidate"}, 5 * time.Minute},
		{"max-age wins over Expires", map[string]string{"Cache-Control": "max-age=60", "Expires": now.Add(time.Hour).Format(http.TimeFormat)}, time.Minute},
		{"no-cache", map[string]string{"Cache-Control": "max-age=60, no-cache"}, 0},
		{"no-store", map[string]string{"Cache-Control": "no-store"}, 0},
		{"max-age capped at a day", map[string]string{"Cache-Control": "max-age=31536000"}, 24 * time.Hour},
		{"bad max-age", map[string]string{"Cache-Control": "max-age=soon"}, 0},
		{"Expires minus Date", map[string]string{"Expires": now.Add(2 * time.Hour).Format(http.TimeFormat), "Date": date}, 2*time.Hour + time.Minute},
		{"Expires without Date", map[string]string{"Expires": now.Add(2 * time.Hour).Format(http.TimeFormat)}, 2 * time.Hour},
		{"Expires in the past", map[string]string{"Expires": now.Add(-time.Hour).Format(http.TimeFormat)}, 0},
		{"invalid Expires", map[string]string{"Expires": "0"}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := http.Header{}
			for k, v := range tt.give {
				h.Set(k, v)
			}
			if got := keyMaxAge(h, now); got != tt.want {
				t.Errorf("keyMaxAge(%v) = %s, want %s", tt.give, got, tt.want)
			}
		})
	}
}

func TestOIDCIssuerDown(t *testing.T) {
	t.Parallel()
	ti := newTestIssuer(t)
	k := newKey(t, "k", jose.RS256)
	ti.publish(k)
	url := ti.URL()
	ti.srv.Close()
	clock := &fakeClock{t: time.Now()}
	o, err := NewOIDC(OIDCConfig{Issuer: url, Audience: testAudience, Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	_, err = o.Verify(context.Background(), sign(t, k, claimsAt(url, clock.Now(), nil)))
	var te *TokenError
	if err == nil || errors.As(err, &te) {
		t.Fatalf("Verify with the issuer down = %v; want an unavailability error, not a token error", err)
	}
}

func TestOIDCConfigValidate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		give    OIDCConfig
		wantErr []string
	}{
		{name: "ok", give: OIDCConfig{Issuer: "https://id.example", Audience: "api"}},
		{name: "missing both", give: OIDCConfig{}, wantErr: []string{"--oidc-issuer", "--oidc-audience"}},
		{name: "relative issuer", give: OIDCConfig{Issuer: "id.example", Audience: "api"}, wantErr: []string{"absolute http(s) URL"}},
		{name: "http issuer", give: OIDCConfig{Issuer: "http://id.example", Audience: "api"}, wantErr: []string{"--oidc-issuer", "want https", "loopback host only"}},
		{name: "http issuer on a private address", give: OIDCConfig{Issuer: "http://10.0.0.5:8080/realms/x", Audience: "api"}, wantErr: []string{"want https"}},
		{name: "http issuer named like loopback", give: OIDCConfig{Issuer: "http://localhost.example.com", Audience: "api"}, wantErr: []string{"want https"}},
		{name: "http loopback issuer", give: OIDCConfig{Issuer: "http://127.0.0.1:5556/dex", Audience: "api"}},
		{name: "http localhost issuer", give: OIDCConfig{Issuer: "http://localhost:8081/realms/x", Audience: "api"}},
		{name: "http ipv6 loopback issuer", give: OIDCConfig{Issuer: "http://[::1]:8081", Audience: "api"}},
		{name: "leeway too big", give: OIDCConfig{Issuer: "https://id.example", Audience: "api", Leeway: time.Hour}, wantErr: []string{"leeway"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.give.Validate()
			if len(tt.wantErr) == 0 {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Validate = nil; want errors naming %v", tt.wantErr)
			}
			for _, w := range tt.wantErr {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
}
