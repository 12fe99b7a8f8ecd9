package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Scopes the API checks, one per endpoint group (OAuth 2.0 scope tokens).
const (
	// ScopeAnalytics grants the /api/v1/analytics/* endpoints.
	ScopeAnalytics = "analytics:read"
	// ScopeOrdersSearch grants order search and order detail.
	ScopeOrdersSearch = "orders:search"
)

// Principal is the caller a verified access token speaks for.
type Principal struct {
	// Subject is the token's sub claim ("" in auth mode none).
	Subject string
	// ClientID is the azp or client_id claim, when present.
	ClientID string
	// Scopes are the granted scopes, from the scope (space-separated) or
	// scp (string or array) claim.
	Scopes []string
}

// Has reports whether p was granted scope.
func (p Principal) Has(scope string) bool { return slices.Contains(p.Scopes, scope) }

// Authenticator turns a request's credentials into a Principal. It returns
// an error wrapping ErrNoToken when the request carries none, a *TokenError
// when the token is not acceptable, and any other error when it cannot
// decide now (the issuer is unreachable: 503).
type Authenticator interface {
	Authenticate(ctx context.Context, r *http.Request) (Principal, error)
}

// ErrNoToken means the request has no bearer token.
var ErrNoToken = errors.New("no bearer token")

// TokenError is a rejected access token; Reason is safe to show the client
// (it never contains the token).
type TokenError struct{ Reason string }

func (e *TokenError) Error() string { return "invalid token: " + e.Reason }

// bearerToken returns the token of an "Authorization: Bearer" header.
func bearerToken(r *http.Request) (string, error) {
	h := r.Header.Get("Authorization")
	if h == "" {
		return "", ErrNoToken
	}
	scheme, tok, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(tok) == "" {
		return "", &TokenError{Reason: "Authorization header is not \"Bearer <token>\""}
	}
	return strings.TrimSpace(tok), nil
}

// noAuth grants every scope to every request: auth mode none, loopback only.
type noAuth struct{}

func (noAuth) Authenticate(context.Context, *http.Request) (Principal, error) {
	return Principal{Scopes: []string{ScopeAnalytics, ScopeOrdersSearch, ScopeOrdersWrite}}, nil
}

// require wraps h so that it runs only for a caller granted scope. It
// answers 401 with a WWW-Authenticate challenge (RFC 6750 §3) when the token
// is missing or invalid, 403 with error="insufficient_scope" when the scope
// is missing, and 503 when the token cannot be checked now.
//
// A client that sent authFailBurst rejected tokens gets 429 with
// Retry-After (seconds) until its allowance refills at authFailRate (see
// failLimiter); its token is not even verified meanwhile.
func (s *Server) require(scope string, h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		client, known := clientKey(r, s.cfg.TrustedProxies)
		if known {
			if d := s.fails.wait(client); d > 0 {
				secs := int((d + time.Second - 1) / time.Second)
				w.Header().Set("Retry-After", strconv.Itoa(secs))
				writeProblem(w, r, Problem{Status: http.StatusTooManyRequests,
					Detail: fmt.Sprintf("too many rejected access tokens from this client; try again in %d s", secs)})
				return
			}
		}
		p, err := s.auth.Authenticate(r.Context(), r)
		var te *TokenError
		if errors.As(err, &te) && known {
			s.fails.fail(client)
		}
		switch {
		case errors.Is(err, ErrNoToken):
			w.Header().Set("WWW-Authenticate", fmt.Sprintf(`Bearer realm="orderstream", scope=%q`, scope))
			writeProblem(w, r, Problem{Status: http.StatusUnauthorized,
				Detail: "this endpoint needs an OAuth 2.0 bearer access token with scope " + scope})
			return
		case errors.As(err, &te):
			s.log.Info("access token rejected", "path", r.URL.Path, "reason", te.Reason)
			w.Header().Set("WWW-Authenticate", fmt.Sprintf(`Bearer realm="orderstream", error="invalid_token", error_description=%q`, te.Reason))
			writeProblem(w, r, Problem{Status: http.StatusUnauthorized, Detail: "the access token was rejected: " + te.Reason})
			return
		case err != nil:
			s.log.Error("cannot verify access tokens", "path", r.URL.Path, "err", err)
			w.Header().Set("Retry-After", "5")
			writeProblem(w, r, Problem{Status: http.StatusServiceUnavailable,
				Detail: "access tokens cannot be verified right now (the issuer is unreachable); try again"})
			return
		}
		if !p.Has(scope) {
			w.Header().Set("WWW-Authenticate", fmt.Sprintf(`Bearer realm="orderstream", error="insufficient_scope", scope=%q`, scope))
			writeProblem(w, r, Problem{Status: http.StatusForbidden, Detail: "the access token lacks scope " + scope})
			return
		}
		h(w, r.WithContext(context.WithValue(r.Context(), principalKey{}, p)))
	}
}
