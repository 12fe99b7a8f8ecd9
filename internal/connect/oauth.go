package connect

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"
)

// Bounds of TokenCache's refresh: a token is fetched again once less than a
// fifth of its lifetime, at most tokenRefreshMax, is left, so a broker that
// re-authenticates a connection never gets a token about to expire.
const (
	tokenRefreshMax = time.Minute
	tokenTimeout    = 10 * time.Second
)

// ClientCredentials is an OAuth 2.0 client-credentials grant (RFC 6749
// §4.4): the client id and secret are sent to TokenURL (HTTP basic auth or
// form, as the server accepts) for an access token.
type ClientCredentials struct {
	TokenURL     string
	ClientID     string
	ClientSecret Secret
	Scopes       []string
	// HTTPClient sends the token requests; nil: a client with a 10 s
	// timeout and the system's roots.
	HTTPClient *http.Client
}

// TokenCache hands out the access token of a client-credentials grant,
// fetching a new one when none is cached or the cached one has less than
// min(1 min, lifetime/5) left; a token without expiry is fetched once.
// Safe for concurrent use; concurrent callers share one fetch.
type TokenCache struct {
	cfg clientcredentials.Config
	hc  *http.Client
	now func() time.Time

	mu        sync.Mutex
	tok       *oauth2.Token
	refreshAt time.Time
}

// NewTokenCache returns a cache over cc.
func NewTokenCache(cc ClientCredentials) *TokenCache {
	hc := cc.HTTPClient
	if hc == nil {
		hc = &http.Client{Timeout: tokenTimeout}
	}
	return &TokenCache{
		cfg: clientcredentials.Config{ClientID: cc.ClientID, ClientSecret: cc.ClientSecret.Reveal(), TokenURL: cc.TokenURL, Scopes: cc.Scopes},
		hc:  hc,
		now: time.Now,
	}
}

// Token returns a valid access token. The error names the token endpoint
// (never the secret); a failed fetch is not cached.
func (c *TokenCache) Token(ctx context.Context) (string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.now()
	if c.tok != nil && now.Before(c.refreshAt) {
		return c.tok.AccessToken, nil
	}
	tok, err := c.cfg.Token(context.WithValue(ctx, oauth2.HTTPClient, c.hc))
	if err != nil {
		return "", fmt.Errorf("token from %s (--kafka-oauth-token-url, client id %q): %s", RedactURL(c.cfg.TokenURL), c.cfg.ClientID, scrub(err.Error(), c.cfg.ClientSecret))
	}
	c.tok = tok
	if tok.Expiry.IsZero() {
		c.refreshAt = now.Add(100 * 365 * 24 * time.Hour)
	} else {
		early := tok.Expiry.Sub(now) / 5
		if early > tokenRefreshMax {
			early = tokenRefreshMax
		}
		c.refreshAt = tok.Expiry.Add(-early)
	}
	return tok.AccessToken, nil
}
