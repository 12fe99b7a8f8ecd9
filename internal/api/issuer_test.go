package api

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"

	jose "github.com/go-jose/go-jose/v4"
)

// testIssuer is an in-process OpenID Connect issuer: discovery and JWKS over
// httptest, keys generated in the test. No network leaves the process.
type testIssuer struct {
	srv      *httptest.Server
	jwksHits atomic.Int32

	mu           sync.Mutex
	keys         []jose.JSONWebKey // public keys served in the JWKS
	cacheControl string            // Cache-Control of the JWKS response, if set
	tokenURL     string            // token_endpoint of discovery; default <issuer>/token
	jwksDown     bool              // the JWKS answers 503
}

// signingKey is a private key with its kid and algorithm.
type signingKey struct {
	kid string
	alg jose.SignatureAlgorithm
	key any // *rsa.PrivateKey or *ecdsa.PrivateKey
	pub any
}

func newTestIssuer(t *testing.T) *testIssuer {
	t.Helper()
	ti := &testIssuer{}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/openid-configuration", func(w http.ResponseWriter, _ *http.Request) {
		ti.mu.Lock()
		token := ti.tokenURL
		ti.mu.Unlock()
		if token == "" {
			token = ti.srv.URL + "/token"
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{
			"issuer":                                ti.srv.URL,
			"jwks_uri":                              ti.srv.URL + "/jwks",
			"authorization_endpoint":                ti.srv.URL + "/authorize",
			"token_endpoint":                        token,
			"id_token_signing_alg_values_supported": []string{"RS256", "ES256"},
		})
	})
	mux.HandleFunc("GET /jwks", func(w http.ResponseWriter, _ *http.Request) {
		ti.jwksHits.Add(1)
		ti.mu.Lock()
		set := jose.JSONWebKeySet{Keys: append([]jose.JSONWebKey(nil), ti.keys...)}
		cc, down := ti.cacheControl, ti.jwksDown
		ti.mu.Unlock()
		if down {
			http.Error(w, "down for maintenance", http.StatusServiceUnavailable)
			return
		}
		if cc != "" {
			w.Header().Set("Cache-Control", cc)
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(set)
	})
	ti.srv = httptest.NewServer(mux)
	t.Cleanup(ti.srv.Close)
	return ti
}

func (ti *testIssuer) URL() string { return ti.srv.URL }

// newKey generates a key; publish puts it in the JWKS.
func newKey(t *testing.T, kid string, alg jose.SignatureAlgorithm) signingKey {
	t.Helper()
	switch alg {
	case jose.RS256:
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			t.Fatal(err)
		}
		return signingKey{kid: kid, alg: alg, key: k, pub: &k.PublicKey}
	case jose.ES256:
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		return signingKey{kid: kid, alg: alg, key: k, pub: &k.PublicKey}
	}
	t.Fatalf("no key for %s", alg)
	return signingKey{}
}

// publish replaces the JWKS with the public halves of keys (rotation).
func (ti *testIssuer) publish(keys ...signingKey) {
	ti.mu.Lock()
	defer ti.mu.Unlock()
	ti.keys = ti.keys[:0]
	for _, k := range keys {
		ti.keys = append(ti.keys, jose.JSONWebKey{Key: k.pub, KeyID: k.kid, Algorithm: string(k.alg), Use: "sig"})
	}
}

// sign returns a compact JWS of claims signed with k.
func sign(t *testing.T, k signingKey, claims map[string]any) string {
	t.Helper()
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: k.alg, Key: jose.JSONWebKey{Key: k.key, KeyID: k.kid}},
		(&jose.SignerOptions{}).WithType("at+jwt"))
	if err != nil {
		t.Fatal(err)
	}
	payload, err := json.Marshal(claims)
	if err != nil {
		t.Fatal(err)
	}
	jws, err := signer.Sign(payload)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := jws.CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}
	return raw
}
