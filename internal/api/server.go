package api

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"mime"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"path"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"time"
)

// AuthMode is how the API authenticates callers.
type AuthMode string

// Auth modes.
const (
	// AuthOIDC requires bearer JWT access tokens from Config.OIDC.Issuer.
	AuthOIDC AuthMode = "oidc"
	// AuthNone lets every request through with every scope: local use only;
	// New refuses it with a non-loopback Listen address.
	AuthNone AuthMode = "none"
)

// Defaults of Config.
const (
	DefaultListen         = "127.0.0.1:8080"
	DefaultRequestTimeout = 15 * time.Second
	// maxQueryBytes bounds a request's query string.
	maxQueryBytes = 4096
	// maxBodyBytes bounds a request body but a command's (maxCommandBytes).
	maxBodyBytes = 64 << 10
	// maxHeaderBytes bounds the request headers (a JWT fits many times).
	maxHeaderBytes = 32 << 10
)

// Config configures a Server.
type Config struct {
	// Listen is host:port to serve on; default DefaultListen
	// (127.0.0.1:8080). With AuthNone the host must be a loopback address
	// or "localhost".
	Listen string
	// Auth is AuthOIDC (default) or AuthNone.
	Auth AuthMode
	// OIDC configures token verification; required with AuthOIDC.
	OIDC OIDCConfig
	// ClientID is the OAuth client id the browser dashboard signs in with
	// (authorization code + PKCE, public client); required with AuthOIDC.
	ClientID string
	// Analytics answers /api/v1/analytics/*. Required.
	Analytics Analytics
	// Search answers order search and order detail. Required.
	Search Search
	// Commands runs the order commands (POST /api/v1/orders…, scope
	// orders:write); nil serves none: a read-only API.
	Commands Commands
	// WaitLimit caps how long a query waits for a consistency token
	// (Prefer: wait=N); default DefaultWaitLimit (10 s), and never beyond
	// RequestTimeout less one second.
	WaitLimit time.Duration
	// UI is the dashboard's static files served at / (index.html at its
	// root); nil serves no dashboard.
	UI fs.FS
	// RequestTimeout bounds each request: its context's deadline, and the
	// basis of the server's read/write timeouts; default
	// DefaultRequestTimeout (15 s).
	RequestTimeout time.Duration
	// TrustedProxies are the reverse proxies (load balancer, ingress) whose
	// X-Forwarded-For names the client and whose X-Forwarded-Proto: https
	// means TLS (HSTS is sent); failed authentication is rate-limited per
	// client, so without them every client behind a proxy shares the
	// proxy's allowance. Default none: the TCP peer is the client.
	TrustedProxies []netip.Prefix
}

func (c *Config) setDefaults() {
	if c.Listen == "" {
		c.Listen = DefaultListen
	}
	if c.Auth == "" {
		c.Auth = AuthOIDC
	}
	if c.RequestTimeout == 0 {
		c.RequestTimeout = DefaultRequestTimeout
	}
	if c.WaitLimit == 0 {
		c.WaitLimit = DefaultWaitLimit
	}
}

// Validate reports every problem of c at once.
func (c Config) Validate() error {
	var errs []error
	host, _, err := net.SplitHostPort(c.Listen)
	if err != nil {
		errs = append(errs, fmt.Errorf("--listen %q: want host:port: %w", c.Listen, err))
	}
	switch c.Auth {
	case AuthOIDC:
		errs = append(errs, c.OIDC.Validate())
		if c.ClientID == "" {
			errs = append(errs, errors.New("--oidc-client-id: required with --auth=oidc (the dashboard's public client)"))
		}
	case AuthNone:
		if err == nil && !IsLoopback(host) {
			errs = append(errs, fmt.Errorf("--listen %q: --auth=none serves everything to anyone who connects, so it binds only to loopback (127.0.0.1, ::1, localhost); use --auth=oidc to listen on %q", c.Listen, host))
		}
	default:
		errs = append(errs, fmt.Errorf("--auth %q: want oidc or none", c.Auth))
	}
	if c.Analytics == nil {
		errs = append(errs, errors.New("api: Analytics is required"))
	}
	if c.Search == nil {
		errs = append(errs, errors.New("api: Search is required"))
	}
	if c.RequestTimeout < 0 {
		errs = append(errs, fmt.Errorf("request timeout %s: must be positive", c.RequestTimeout))
	}
	if c.WaitLimit < 0 {
		errs = append(errs, fmt.Errorf("--wait-limit %s: must be positive", c.WaitLimit))
	}
	return errors.Join(errs...)
}

// IsLoopback reports whether host (no port) names only the loopback
// interface: "localhost", 127.0.0.0/8 or ::1. An empty host (all
// interfaces) and any other name are not loopback; names are not resolved.
func IsLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Option sets an optional collaborator of a Server.
type Option func(*Server)

// WithLogger sets the logger; default slog.Default().
func WithLogger(l *slog.Logger) Option { return func(s *Server) { s.log = l } }

// WithAuthenticator replaces the authenticator Config.Auth selects (tests,
// or another token scheme).
func WithAuthenticator(a Authenticator) Option { return func(s *Server) { s.auth = a } }

// Server serves the API and the dashboard. Create it with New; Handler is
// safe for concurrent use.
type Server struct {
	cfg       Config
	log       *slog.Logger
	auth      Authenticator
	oidc      *OIDC
	analytics Analytics
	search    Search
	handler   http.Handler
	csp       string
	metrics   *apiMetrics
	ready     *readiness
	fails     *failLimiter

	mu     sync.Mutex
	srv    *http.Server
	closed bool
}

// New validates cfg and builds the server. It does no network I/O.
func New(cfg Config, opts ...Option) (*Server, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	s := &Server{cfg: cfg, log: slog.Default(), analytics: tracedAnalytics{cfg.Analytics}, search: tracedSearch{inner: cfg.Search}}
	for _, o := range opts {
		o(s)
	}
	if s.auth == nil {
		switch cfg.Auth {
		case AuthNone:
			s.auth = noAuth{}
		case AuthOIDC:
			o, err := NewOIDC(cfg.OIDC)
			if err != nil {
				return nil, err
			}
			s.oidc, s.auth = o, o
		}
	}
	s.csp = contentSecurityPolicy(cfg, "")
	s.metrics, s.ready, s.fails = newAPIMetrics(), newReadiness(cfg), newFailLimiter()
	s.handler = s.routes()
	return s, nil
}

// contentSecurityPolicy allows scripts, styles and data only from this
// origin (no inline script or style), plus, for the browser's OIDC
// discovery and token requests, the issuer's origin and tokenOrigin (the
// discovered token endpoint's, "" when unknown or the issuer's own: some
// providers serve it from another host).
func contentSecurityPolicy(cfg Config, tokenOrigin string) string {
	connect := "'self'"
	if cfg.Auth == AuthOIDC {
		issuer := ""
		if u, err := url.Parse(cfg.OIDC.Issuer); err == nil && u.Host != "" {
			issuer = u.Scheme + "://" + u.Host
			connect += " " + issuer
		}
		if tokenOrigin != "" && tokenOrigin != issuer {
			connect += " " + tokenOrigin
		}
	}
	return "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; font-src 'self'; " +
		"connect-src " + connect + "; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
}

// Handler returns the server's whole HTTP handler (routes and middleware).
func (s *Server) Handler() http.Handler { return s.handler }

//go:embed openapi.json
var openAPI []byte

func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	// Every query waits for a Consistency-Token header (read-your-writes);
	// order detail also for ?min_version=. They probe the read models
	// themselves (cfg), not the traced wrappers, which hide OrderVersions.
	analytics := func(h http.HandlerFunc) http.HandlerFunc {
		return s.require(ScopeAnalytics, s.consistent("analytics", s.cfg.Analytics, false, h))
	}
	mux.HandleFunc("GET /api/v1/analytics/summary", analytics(s.handleSummary))
	mux.HandleFunc("GET /api/v1/analytics/revenue", analytics(s.handleRevenue))
	mux.HandleFunc("GET /api/v1/analytics/top-products", analytics(s.handleTopProducts))
	mux.HandleFunc("GET /api/v1/analytics/return-rate", analytics(s.handleReturnRate))
	searchRoute := s.require(ScopeOrdersSearch, s.consistent("search", searchedOf(s.cfg.Search), false, s.handleSearch))
	mux.HandleFunc("GET /api/v1/orders/search", searchRoute)
	mux.HandleFunc("GET /orders/search", searchRoute)
	mux.HandleFunc("GET /api/v1/orders/{id}", s.require(ScopeOrdersSearch, s.consistent("search", s.cfg.Search, true, s.handleOrder)))
	if s.cfg.Commands != nil {
		s.commandRoutes(mux)
	}
	mux.HandleFunc("GET /api/v1/config", s.handleConfig)
	mux.HandleFunc("GET /openapi.json", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(openAPI)
	})
	// /healthz is liveness (the process serves); /readyz is readiness
	// (the read models answer); /metrics is Prometheus's.
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, map[string]string{"status": "ok"})
	})
	mux.HandleFunc("GET /readyz", s.handleReady)
	mux.Handle("GET /metrics", s.metricsHandler())
	mux.HandleFunc("GET /api/", func(w http.ResponseWriter, r *http.Request) {
		if s.cfg.Commands != nil && isCommandPath(r.URL.Path) {
			w.Header().Set("Allow", "POST")
			writeProblem(w, r, Problem{Status: http.StatusMethodNotAllowed, Detail: r.Method + " " + r.URL.Path + " is a command: send it as POST (see /openapi.json)"})
			return
		}
		writeProblem(w, r, Problem{Status: http.StatusNotFound, Detail: "no endpoint " + r.URL.Path + "; see /openapi.json"})
	})
	if s.cfg.UI != nil {
		mux.Handle("GET /", staticFiles(s.cfg.UI))
	} else {
		mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
			writeProblem(w, r, Problem{Status: http.StatusNotFound, Detail: "this server has no dashboard; the API is described at /openapi.json"})
		})
	}
	return traced(mux, s.instrument(mux, s.recoverer(s.logRequests(s.secure(s.loopbackHost(s.limits(s.readOnly(mux))))))))
}

// loopbackHost, with AuthNone only, answers 421 to a request whose Host
// header is not a loopback name (localhost, 127.0.0.0/8 or [::1], any
// port). Binding to loopback is not enough: a web page can point a name it
// controls at 127.0.0.1 (DNS rebinding) and have the browser read the API
// as that page's own origin, with the Host header still naming the page.
func (s *Server) loopbackHost(next http.Handler) http.Handler {
	if s.cfg.Auth != AuthNone {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host := r.Host
		if h, _, err := net.SplitHostPort(host); err == nil {
			host = h
		}
		if !IsLoopback(strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")) {
			writeProblem(w, r, Problem{Status: http.StatusMisdirectedRequest,
				Detail: "Host " + quote(r.Host) + " is not a loopback name: with --auth=none this server answers only " +
					"requests for localhost, 127.0.0.1 or [::1] (open it by one of those names, or use --auth=oidc)"})
			return
		}
		next.ServeHTTP(w, r)
	})
}

// readOnly answers 405 to every method but GET and HEAD, and POST to the
// command endpoints when the server runs commands (Config.Commands).
func (s *Server) readOnly(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost && s.cfg.Commands != nil && isCommandPath(r.URL.Path) {
			next.ServeHTTP(w, r)
			return
		}
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			detail := r.Method + " is not allowed; this API is read-only (GET)"
			if s.cfg.Commands != nil {
				detail = r.Method + " is not allowed on " + quote(r.URL.Path) + "; the commands are POST /api/v1/orders and POST /api/v1/orders/{id}/pay, ship, cancel or refund"
			}
			writeProblem(w, r, Problem{Status: http.StatusMethodNotAllowed, Detail: detail})
			return
		}
		next.ServeHTTP(w, r)
	})
}

// dashboardConfig tells the browser dashboard how to sign in.
type dashboardConfig struct {
	Auth     AuthMode `json:"auth"`
	Issuer   string   `json:"issuer,omitempty"`
	ClientID string   `json:"client_id,omitempty"`
	Audience string   `json:"audience,omitempty"`
	Scopes   []string `json:"scopes,omitempty"`
}

func (s *Server) handleConfig(w http.ResponseWriter, _ *http.Request) {
	c := dashboardConfig{Auth: s.cfg.Auth}
	if s.cfg.Auth == AuthOIDC {
		c.Issuer, c.ClientID, c.Audience = s.cfg.OIDC.Issuer, s.cfg.ClientID, s.cfg.OIDC.Audience
		c.Scopes = []string{"openid", ScopeAnalytics, ScopeOrdersSearch}
	}
	writeJSON(w, c)
}

// staticFiles serves the dashboard; files are revalidated on every load
// (no-cache) since their names carry no hash. When root holds NAME.gz beside
// NAME and the client accepts gzip, the compressed copy is sent.
func staticFiles(root fs.FS) http.Handler {
	files := http.FileServerFS(root)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-cache")
		w.Header().Add("Vary", "Accept-Encoding")
		name := strings.TrimPrefix(r.URL.Path, "/")
		if name == "" {
			name = "index.html"
		}
		if strings.Contains(r.Header.Get("Accept-Encoding"), "gzip") && !strings.HasSuffix(name, ".gz") {
			if b, err := fs.ReadFile(root, name+".gz"); err == nil {
				if ct := mime.TypeByExtension(path.Ext(name)); ct != "" {
					w.Header().Set("Content-Type", ct)
				}
				w.Header().Set("Content-Encoding", "gzip")
				w.Header().Set("Content-Length", strconv.Itoa(len(b)))
				if r.Method != http.MethodHead {
					_, _ = w.Write(b)
				}
				return
			}
		}
		files.ServeHTTP(w, r)
	})
}

// secure sets the security headers on every response.
func (s *Server) secure(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		csp := s.csp
		if s.oidc != nil {
			if o := s.oidc.TokenEndpointOrigin(); o != "" {
				csp = contentSecurityPolicy(s.cfg, o)
			}
		}
		h.Set("Content-Security-Policy", csp)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Cross-Origin-Opener-Policy", "same-origin")
		h.Set("Cross-Origin-Resource-Policy", "same-origin")
		h.Set("Permissions-Policy", "camera=(), microphone=(), geolocation=()")
		if s.overTLS(r) {
			h.Set("Strict-Transport-Security", "max-age=31536000")
		}
		next.ServeHTTP(w, r)
	})
}

// overTLS reports whether the client reached the server over TLS: this
// server's own TLS, or X-Forwarded-Proto: https from a trusted proxy that
// terminated it.
func (s *Server) overTLS(r *http.Request) bool {
	if r.TLS != nil {
		return true
	}
	if !strings.EqualFold(r.Header.Get("X-Forwarded-Proto"), "https") {
		return false
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return false
	}
	peer, err := netip.ParseAddr(host)
	return err == nil && isTrusted(peer.Unmap(), s.cfg.TrustedProxies)
}

// limits bounds the query string and body and puts the request under its
// deadline.
func (s *Server) limits(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if len(r.URL.RawQuery) > maxQueryBytes {
			writeProblem(w, r, Problem{Status: http.StatusRequestURITooLong,
				Detail: "query string is " + strconv.Itoa(len(r.URL.RawQuery)) + " bytes; at most " + strconv.Itoa(maxQueryBytes)})
			return
		}
		if perr := queryError(r.URL.RawQuery); perr != nil {
			writeBadParams(w, r, []*paramError{perr})
			return
		}
		limit := int64(maxBodyBytes)
		if r.Method == http.MethodPost && isCommandPath(r.URL.Path) {
			limit = maxCommandBytes
		}
		if r.ContentLength > limit {
			writeProblem(w, r, Problem{Status: http.StatusRequestEntityTooLarge,
				Detail: "request body is larger than " + strconv.FormatInt(limit, 10) + " bytes"})
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, limit)
		ctx, cancel := context.WithTimeout(r.Context(), s.cfg.RequestTimeout)
		defer cancel()
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}

// queryError names the first parameter of a raw query string that
// url.ParseQuery cannot read (a ';' separator, a bad %-escape), or returns
// nil. Such a pair would be dropped from r.URL.Query() without a word, and
// the request answered as if that filter had not been given.
func queryError(raw string) *paramError {
	for raw != "" {
		var pair string
		pair, raw, _ = strings.Cut(raw, "&")
		if pair == "" {
			continue
		}
		rawKey, rawValue, _ := strings.Cut(pair, "=")
		key, kerr := url.QueryUnescape(rawKey)
		if kerr != nil {
			key = rawKey
		}
		switch {
		case strings.Contains(pair, ";"):
			return badParam(key, "%q contains ';': separate parameters with '&' and escape a ';' in a value as %%3B", pair)
		case kerr != nil:
			return badParam(key, "is not URL-encoded: %v", kerr)
		}
		if _, err := url.QueryUnescape(rawValue); err != nil {
			return badParam(key, "value %q is not URL-encoded: %v", rawValue, err)
		}
	}
	return nil
}

// statusWriter records the status code for the access log.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// logRequests writes one access log line per API request: method, path,
// status, duration. Never headers (Authorization), never the query string
// (it may carry a customer id), so no credential reaches the log.
func (s *Server) logRequests(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w}
		next.ServeHTTP(sw, r)
		level := slog.LevelDebug
		if strings.HasPrefix(r.URL.Path, "/api/") || strings.HasPrefix(r.URL.Path, "/orders/") {
			level = slog.LevelInfo
		}
		s.log.Log(r.Context(), level, "http request", "method", r.Method, "path", r.URL.Path,
			"status", sw.status, "duration_ms", time.Since(start).Milliseconds())
	})
}

// recoverer turns a handler panic into a 500 problem and a logged stack.
func (s *Server) recoverer(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				s.log.Error("handler panic", "path", r.URL.Path, "panic", fmt.Sprint(v), "stack", string(debug.Stack()))
				writeProblem(w, r, Problem{Status: http.StatusInternalServerError, Detail: "internal error"})
			}
		}()
		next.ServeHTTP(w, r)
	})
}

// backendError answers a read-model failure: 504 when the request's deadline
// passed, 503 otherwise; the cause is logged, never sent to the client.
func (s *Server) backendError(w http.ResponseWriter, r *http.Request, model string, err error) {
	if errors.Is(r.Context().Err(), context.Canceled) {
		return // the client went away; nobody reads the answer
	}
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(r.Context().Err(), context.DeadlineExceeded) {
		s.log.Warn("read model timed out", "path", r.URL.Path, "read_model", model, "err", err)
		writeProblem(w, r, Problem{Status: http.StatusGatewayTimeout,
			Detail: "the " + model + " read model did not answer within " + s.cfg.RequestTimeout.String()})
		return
	}
	s.log.Error("read model query failed", "path", r.URL.Path, "read_model", model, "err", err)
	w.Header().Set("Retry-After", "5")
	writeProblem(w, r, Problem{Status: http.StatusServiceUnavailable,
		Detail: "the " + model + " read model is unavailable; try again shortly"})
}

// quote returns s in double quotes with Go escaping (safe in a detail).
func quote(s string) string { return strconv.Quote(s) }

// Run serves on Config.Listen until ctx is cancelled, then shuts down
// gracefully (in-flight requests get RequestTimeout to finish). It returns
// nil after a clean shutdown, or the listen/serve error. With AuthOIDC it
// first tries discovery and logs (not fails) if the issuer is unreachable:
// requests retry it.
func (s *Server) Run(ctx context.Context) error {
	ln, err := net.Listen("tcp", s.cfg.Listen)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", s.cfg.Listen, err)
	}
	return s.Serve(ctx, ln)
}

// Serve is Run on a listener the caller opened (tests listen on port 0).
// It closes ln.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	srv := &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      s.cfg.RequestTimeout + 5*time.Second,
		IdleTimeout:       60 * time.Second,
		MaxHeaderBytes:    maxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
		BaseContext:       func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		_ = ln.Close()
		return errors.New("api: server closed")
	}
	s.srv = srv
	s.mu.Unlock()

	if s.cfg.Auth == AuthNone {
		s.log.Warn("AUTHENTICATION IS OFF (--auth=none): every caller gets every scope; loopback only, local use only", "listen", ln.Addr().String())
	} else if s.oidc != nil {
		dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		if err := s.oidc.Discover(dctx); err != nil {
			s.log.Warn("OIDC issuer not reachable yet; requests will retry discovery", "issuer", s.cfg.OIDC.Issuer, "err", err)
		}
		cancel()
	}
	s.log.Info("serving API and dashboard", "url", "http://"+ln.Addr().String()+"/", "auth", string(s.cfg.Auth))

	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("serve on %s: %w", ln.Addr(), err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), s.cfg.RequestTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return fmt.Errorf("shut down API server: %w", err)
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve on %s: %w", ln.Addr(), err)
	}
	return nil
}

// Close stops the server at once (in-flight requests are cut). It is
// idempotent and safe to call before or after Run.
func (s *Server) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	if s.srv != nil {
		return s.srv.Close()
	}
	return nil
}
