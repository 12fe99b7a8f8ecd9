package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	jose "github.com/go-jose/go-jose/v4"
)

// Defaults of OIDCConfig.
const (
	// DefaultLeeway is the clock skew tolerated on exp and nbf.
	DefaultLeeway = 60 * time.Second
	// DefaultKeyRefreshInterval is the shortest time between two JWKS
	// fetches caused by tokens with an unknown key id.
	DefaultKeyRefreshInterval = 10 * time.Second
	// DefaultKeyMaxAge is how long a fetched JWKS is used before it is
	// fetched again when the issuer's response says nothing (no
	// Cache-Control max-age, no Expires).
	DefaultKeyMaxAge = time.Hour
	// maxKeyMaxAge caps the cache lifetime an issuer's headers can ask for,
	// so that a key the issuer removed stops verifying within a day.
	maxKeyMaxAge = 24 * time.Hour
	// discoveryRetry is how long a failed discovery is remembered before
	// the next request tries again.
	discoveryRetry = 5 * time.Second
	// maxJWKSBytes bounds the issuer's JWKS document.
	maxJWKSBytes = 1 << 20
)

// allowedAlgs is the explicit allow-list of JWS algorithms: asymmetric only,
// so that no key the server can see (a public key) can ever mint a token.
var allowedAlgs = []jose.SignatureAlgorithm{jose.RS256, jose.ES256}

// OIDCConfig configures bearer token verification against an OpenID Connect
// issuer.
type OIDCConfig struct {
	// Issuer is the issuer URL; its /.well-known/openid-configuration must
	// name exactly this issuer. Required; https, or http for a loopback host
	// only (a local test issuer).
	Issuer string
	// Audience must be among the token's aud values: the API's audience
	// (resource identifier), not the browser's client id. Required.
	Audience string
	// Leeway is the clock skew tolerated on exp and nbf; default
	// DefaultLeeway (60 s), at most 5 minutes.
	Leeway time.Duration
	// KeyRefreshInterval is the shortest time between JWKS fetches caused
	// by an unknown kid; default DefaultKeyRefreshInterval (10 s). It keeps
	// forged tokens with random key ids from turning the API into a load
	// generator against the issuer.
	KeyRefreshInterval time.Duration
	// HTTPClient fetches discovery and JWKS; default a client with a 10 s
	// timeout.
	HTTPClient *http.Client
	// Now is the clock; default time.Now (tests set it).
	Now func() time.Time
}

func (c *OIDCConfig) setDefaults() {
	if c.Leeway == 0 {
		c.Leeway = DefaultLeeway
	}
	if c.KeyRefreshInterval == 0 {
		c.KeyRefreshInterval = DefaultKeyRefreshInterval
	}
	if c.HTTPClient == nil {
		c.HTTPClient = &http.Client{Timeout: 10 * time.Second}
	}
	if c.Now == nil {
		c.Now = time.Now
	}
}

// Validate reports every problem of c.
func (c OIDCConfig) Validate() error {
	var errs []error
	if c.Issuer == "" {
		errs = append(errs, errors.New("--oidc-issuer: required with --auth=oidc"))
	} else if u, err := url.Parse(c.Issuer); err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
		errs = append(errs, fmt.Errorf("--oidc-issuer %q: want an absolute http(s) URL", c.Issuer))
	} else if u.Scheme == "http" && !IsLoopback(u.Hostname()) {
		errs = append(errs, fmt.Errorf("--oidc-issuer %q: want https (the issuer's keys decide who may read the data; over plain http "+
			"anyone on the path can replace them); http is accepted for a loopback host only (localhost, 127.0.0.1, [::1])", c.Issuer))
	}
	if c.Audience == "" {
		errs = append(errs, errors.New("--oidc-audience: required with --auth=oidc (the API's audience in access tokens)"))
	}
	if c.Leeway < 0 || c.Leeway > 5*time.Minute {
		errs = append(errs, fmt.Errorf("oidc leeway %s: want 0 to 5m", c.Leeway))
	}
	if c.KeyRefreshInterval < 0 {
		errs = append(errs, fmt.Errorf("oidc key refresh interval %s: must not be negative", c.KeyRefreshInterval))
	}
	return errors.Join(errs...)
}

// OIDC verifies bearer JWT access tokens issued by an OpenID Connect
// provider. Discovery (/.well-known/openid-configuration) runs on first use
// and again after a failure; the JWKS it names is cached (see keySet) and
// fetched again when it is older than the issuer's Cache-Control max-age or
// Expires (default DefaultKeyMaxAge, at most 24 h) and when a token names an
// unknown kid, at most once per KeyRefreshInterval either way.
// Claims checks are go-oidc's (issuer, audience, algorithm allow-list); exp
// and nbf are checked here with Leeway because go-oidc has no leeway on exp.
// Safe for concurrent use.
type OIDC struct {
	cfg OIDCConfig

	// tokenOrigin is the origin (scheme://host[:port]) of the discovered
	// token_endpoint; nil before discovery.
	tokenOrigin atomic.Pointer[string]

	mu       sync.Mutex
	verifier *oidc.IDTokenVerifier
	failedAt time.Time
	lastErr  error
}

// NewOIDC returns a verifier for cfg. It does no network I/O; call Discover
// to check the issuer at start-up.
func NewOIDC(cfg OIDCConfig) (*OIDC, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &OIDC{cfg: cfg}, nil
}

// Discover fetches the issuer's discovery document unless it already has
// one. Errors name the issuer; a failure is retried by the next request
// after 5 s.
func (o *OIDC) Discover(ctx context.Context) error {
	_, err := o.load(ctx)
	return err
}

func (o *OIDC) load(ctx context.Context) (*oidc.IDTokenVerifier, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.verifier != nil {
		return o.verifier, nil
	}
	if !o.failedAt.IsZero() && o.cfg.Now().Sub(o.failedAt) < discoveryRetry {
		return nil, o.lastErr
	}
	p, err := oidc.NewProvider(oidc.ClientContext(ctx, o.cfg.HTTPClient), o.cfg.Issuer)
	if err != nil {
		o.failedAt, o.lastErr = o.cfg.Now(), fmt.Errorf("oidc discovery at %s: %w", o.cfg.Issuer, err)
		return nil, o.lastErr
	}
	var meta struct {
		JWKSURI       string `json:"jwks_uri"`
		TokenEndpoint string `json:"token_endpoint"`
	}
	if err := p.Claims(&meta); err != nil || meta.JWKSURI == "" {
		o.failedAt, o.lastErr = o.cfg.Now(), fmt.Errorf("oidc discovery at %s: no jwks_uri", o.cfg.Issuer)
		return nil, o.lastErr
	}
	if origin, ok := secureOrigin(meta.TokenEndpoint); ok {
		o.tokenOrigin.Store(&origin)
	}
	keys := &keySet{url: meta.JWKSURI, client: o.cfg.HTTPClient, minInterval: o.cfg.KeyRefreshInterval, now: o.cfg.Now}
	algs := make([]string, len(allowedAlgs))
	for i, a := range allowedAlgs {
		algs[i] = string(a)
	}
	o.verifier = oidc.NewVerifier(o.cfg.Issuer, keys, &oidc.Config{
		ClientID:             o.cfg.Audience,
		SupportedSigningAlgs: algs,
		SkipExpiryCheck:      true, // checked in Verify, with leeway
	})
	return o.verifier, nil
}

// TokenEndpointOrigin returns the origin (scheme://host[:port]) of the
// token endpoint the issuer's discovery document names, "" before a
// successful discovery or when it is neither https nor http on a loopback
// host. The browser dashboard posts its authorization code there.
func (o *OIDC) TokenEndpointOrigin() string {
	if p := o.tokenOrigin.Load(); p != nil {
		return *p
	}
	return ""
}

// secureOrigin returns the origin of the absolute URL raw when it is https,
// or http on a loopback host (the rule of --oidc-issuer).
func secureOrigin(raw string) (string, bool) {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || (u.Scheme != "https" && !(u.Scheme == "http" && IsLoopback(u.Hostname()))) {
		return "", false
	}
	return u.Scheme + "://" + u.Host, true
}

// Verify checks raw and returns its principal, a *TokenError when the token
// is not acceptable, or another error when the issuer cannot be reached.
func (o *OIDC) Verify(ctx context.Context, raw string) (Principal, error) {
	v, err := o.load(ctx)
	if err != nil {
		return Principal{}, err
	}
	// go-oidc flattens key set errors into text; the slot carries a JWKS
	// fetch failure out so that it answers 503, not 401.
	slot := &fetchSlot{}
	tok, err := v.Verify(context.WithValue(ctx, fetchSlotKey{}, slot), raw)
	if err != nil {
		if slot.err != nil {
			return Principal{}, slot.err
		}
		return Principal{}, &TokenError{Reason: strings.TrimPrefix(err.Error(), "oidc: ")}
	}
	var c struct {
		Expiry    *jsonTime       `json:"exp"`
		NotBefore *jsonTime       `json:"nbf"`
		Scope     string          `json:"scope"`
		Scp       json.RawMessage `json:"scp"`
		AZP       string          `json:"azp"`
		ClientID  string          `json:"client_id"`
	}
	if err := tok.Claims(&c); err != nil {
		return Principal{}, &TokenError{Reason: "claims are not a JSON object of the expected types"}
	}
	now := o.cfg.Now()
	switch {
	case c.Expiry == nil:
		return Principal{}, &TokenError{Reason: "token has no exp claim"}
	case now.After(c.Expiry.Time.Add(o.cfg.Leeway)):
		return Principal{}, &TokenError{Reason: "token expired at " + c.Expiry.Time.UTC().Format(time.RFC3339)}
	case c.NotBefore != nil && now.Add(o.cfg.Leeway).Before(c.NotBefore.Time):
		return Principal{}, &TokenError{Reason: "token not valid before " + c.NotBefore.Time.UTC().Format(time.RFC3339)}
	}
	scopes := strings.Fields(c.Scope)
	if len(c.Scp) > 0 {
		var one string
		var many []string
		switch {
		case json.Unmarshal(c.Scp, &one) == nil:
			scopes = append(scopes, strings.Fields(one)...)
		case json.Unmarshal(c.Scp, &many) == nil:
			scopes = append(scopes, many...)
		default:
			return Principal{}, &TokenError{Reason: "scp claim is neither a string nor an array of strings"}
		}
	}
	client := c.AZP
	if client == "" {
		client = c.ClientID
	}
	return Principal{Subject: tok.Subject, ClientID: client, Scopes: scopes}, nil
}

// Authenticate implements Authenticator for bearer tokens.
func (o *OIDC) Authenticate(ctx context.Context, r *http.Request) (Principal, error) {
	raw, err := bearerToken(r)
	if err != nil {
		return Principal{}, err
	}
	return o.Verify(ctx, raw)
}

// jsonTime is a NumericDate (RFC 7519 §2: a JSON number of seconds since
// the epoch, may be fractional). A string, even of digits, is refused
// (encoding/json would otherwise read "9999999999" into a json.Number), and
// so is a number beyond ±2^53 s, which no real expiry needs.
type jsonTime struct{ time.Time }

// maxNumericDate bounds |NumericDate| in seconds: 2^53, the largest integer
// a float64 holds exactly.
const maxNumericDate = 1 << 53

func (t *jsonTime) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if len(b) == 0 || (b[0] != '-' && (b[0] < '0' || b[0] > '9')) {
		return fmt.Errorf("NumericDate %.40s: not a JSON number", b)
	}
	var n json.Number
	if err := json.Unmarshal(b, &n); err != nil {
		return fmt.Errorf("NumericDate: %w", err)
	}
	f, err := n.Float64()
	if err != nil || f > maxNumericDate || f < -maxNumericDate {
		return fmt.Errorf("NumericDate %s: out of range", n)
	}
	sec := int64(f)
	t.Time = time.Unix(sec, int64((f-float64(sec))*1e9))
	return nil
}

// keySet is the issuer's JWKS, cached. A token whose kid is in the cache is
// checked against that key only (a bad signature never causes a fetch); an
// unknown kid causes one fetch, at most once per minInterval, so a rotated
// key is picked up while forged key ids cannot make the API hammer the
// issuer. Once the cache is older than the lifetime the issuer's response
// gave (Cache-Control max-age, else Expires − Date, else DefaultKeyMaxAge;
// at most 24 h) the next token fetches it again, and a key the issuer
// removed stops verifying. If that refresh fails, the cached keys keep
// verifying the tokens they know (an issuer blip does not lock every user
// out) and the next refresh is tried after minInterval; an unknown kid then
// answers 503. It implements oidc.KeySet on go-jose's JSONWebKeySet.
//
// go-oidc's RemoteKeySet is not used: it fetches on every signature that
// does not verify (forged tokens would drive one JWKS fetch each), never
// refreshes by age (it sends Cache-Control: no-cache and ignores the
// response's caching headers), reads the JWKS without a size bound, and its
// fetch failures reach the caller as text only, which the 503-versus-401
// answer cannot branch on.
type keySet struct {
	url         string
	client      *http.Client
	minInterval time.Duration
	now         func() time.Time

	mu        sync.Mutex
	keys      []jose.JSONWebKey
	fetchedAt time.Time // of the last fetch, successful or not
	expiresAt time.Time // of keys: refresh on the first token after it
	fetchErr  error     // of the last fetch; keeps answering 503 until a fetch succeeds
}

// fetchSlot receives a JWKS fetch failure during one verification: not the
// token's fault, so the caller answers 503 rather than 401.
type fetchSlot struct{ err error }

type fetchSlotKey struct{}

// VerifySignature implements oidc.KeySet.
func (k *keySet) VerifySignature(ctx context.Context, raw string) ([]byte, error) {
	jws, err := jose.ParseSigned(raw, allowedAlgs)
	if err != nil {
		return nil, fmt.Errorf("malformed or disallowed JWS: %w", err)
	}
	if len(jws.Signatures) != 1 {
		return nil, errors.New("want exactly one signature")
	}
	kid := jws.Signatures[0].Header.KeyID
	if kid == "" {
		return nil, errors.New("token header has no kid")
	}
	key, err := k.key(ctx, kid)
	if err != nil {
		return nil, err
	}
	payload, err := jws.Verify(key)
	if err != nil {
		return nil, fmt.Errorf("signature does not verify with key %q", kid)
	}
	return payload, nil
}

func (k *keySet) key(ctx context.Context, kid string) (*jose.JSONWebKey, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	fresh := k.now().Before(k.expiresAt)
	if key := findKey(k.keys, kid); key != nil && fresh {
		return key, nil
	}
	if k.fetchedAt.IsZero() || k.now().Sub(k.fetchedAt) >= k.minInterval {
		keys, maxAge, err := k.fetch(ctx)
		k.fetchedAt, k.fetchErr = k.now(), err
		if err == nil {
			k.keys, k.expiresAt = keys, k.fetchedAt.Add(maxAge)
		}
		if key := findKey(k.keys, kid); key != nil {
			return key, nil
		}
	}
	if k.fetchErr != nil {
		err := fmt.Errorf("fetch JWKS: %w", k.fetchErr)
		if slot, ok := ctx.Value(fetchSlotKey{}).(*fetchSlot); ok {
			slot.err = err
		}
		return nil, err
	}
	return nil, fmt.Errorf("unknown key id %q", kid)
}

func findKey(keys []jose.JSONWebKey, kid string) *jose.JSONWebKey {
	for i := range keys {
		if keys[i].KeyID == kid && (keys[i].Use == "" || keys[i].Use == "sig") && keys[i].IsPublic() {
			return &keys[i]
		}
	}
	return nil
}

// fetch returns the issuer's keys and how long they may be cached.
func (k *keySet) fetch(ctx context.Context) ([]jose.JSONWebKey, time.Duration, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, k.url, nil)
	if err != nil {
		return nil, 0, fmt.Errorf("%s: %w", k.url, err)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := k.client.Do(req)
	if err != nil {
		return nil, 0, fmt.Errorf("%s: %w", k.url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, 0, fmt.Errorf("%s: HTTP %d", k.url, resp.StatusCode)
	}
	var set jose.JSONWebKeySet
	if err := json.NewDecoder(io.LimitReader(resp.Body, maxJWKSBytes)).Decode(&set); err != nil {
		return nil, 0, fmt.Errorf("%s: not a JWKS: %w", k.url, err)
	}
	return set.Keys, keyMaxAge(resp.Header, k.now()), nil
}

// keyMaxAge is how long a JWKS response with header h, received at now, may
// be cached, by RFC 9111 §4.2.1: Cache-Control max-age (s-maxage is for
// shared caches), else Expires − Date (an invalid Expires means expired);
// no-store and no-cache mean 0. 0 refetches on the next token, still at
// most once per KeyRefreshInterval. Without either header DefaultKeyMaxAge;
// never more than 24 h.
func keyMaxAge(h http.Header, now time.Time) time.Duration {
	age, haveAge := time.Duration(0), false
	for _, d := range strings.Split(strings.ToLower(h.Get("Cache-Control")), ",") {
		name, val, _ := strings.Cut(strings.TrimSpace(d), "=")
		switch name {
		case "no-store", "no-cache":
			return 0
		case "max-age":
			n, err := strconv.ParseInt(strings.Trim(val, `"`), 10, 64)
			if err != nil || n < 0 {
				n = 0
			}
			age, haveAge = time.Duration(min(n, int64(maxKeyMaxAge/time.Second)))*time.Second, true
		}
	}
	if haveAge {
		return age
	}
	if h.Get("Expires") == "" {
		return DefaultKeyMaxAge
	}
	exp, err := http.ParseTime(h.Get("Expires"))
	if err != nil {
		return 0
	}
	if date, err := http.ParseTime(h.Get("Date")); err == nil {
		now = date
	}
	return min(max(exp.Sub(now), 0), maxKeyMaxAge)
}
