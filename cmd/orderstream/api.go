package main

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/orderstream/orderstream/internal/api"
	"github.com/orderstream/orderstream/internal/api/readmodel"
	"github.com/orderstream/orderstream/internal/web"
	"github.com/orderstream/orderstream/producer/command"
	"github.com/orderstream/orderstream/producer/store"
	"github.com/orderstream/orderstream/projections/search"
	"github.com/orderstream/orderstream/schemas"
	"github.com/spf13/cobra"
)

type apiFlags struct {
	listen         string
	auth           string
	issuer         string
	audience       string
	clientID       string
	requestTimeout time.Duration
	indexPrefix    string
	trustedProxies []string
	commands       bool
	keyRetention   time.Duration
	waitLimit      time.Duration
	pgMaxConns     int32
}

func newAPICmd(g *globals) *cobra.Command {
	var fl apiFlags
	cmd := &cobra.Command{
		Use:   "api",
		Short: "Serve the JSON API and the browser dashboard",
		Long: `Serves the read-only JSON API (analytics from ClickHouse, order search from
the search engine) and the browser dashboard at /. The API is described at
/openapi.json; every figure comes from the same queries as
'orderstream analytics' and 'orderstream search'. On the same address,
without authentication: /healthz (liveness), /readyz (200 while ClickHouse
and the search engine answer a ping, else 503) and /metrics (Prometheus).

Authentication (--auth):
  oidc  (default) bearer JWT access tokens from --oidc-issuer (https; http
        only on a loopback host; discovery and JWKS from the issuer;
        RS256/ES256 only; aud must contain --oidc-audience; exp/nbf numbers
        with 60 s leeway). After 10 rejected tokens a client gets 429 until
        its allowance refills (1/s; see --trusted-proxy). Scopes: analytics:read for
        /api/v1/analytics/*, orders:search for search and order detail.
        The dashboard signs in with the authorization code flow + PKCE as
        the public client --oidc-client-id, with redirect URI
        http(s)://<this server>/; the issuer must allow that redirect URI and
        CORS from this origin on its discovery and token endpoints. The
        access token is kept in the page's memory only.
  none  no authentication, every caller gets every scope: local use only.
        Logs a warning at every start, refuses any --listen address but
        loopback and answers 421 to a Host header that is not a loopback
        name (DNS rebinding).

Commands (--commands, default on; scope orders:write): POST /api/v1/orders
places an order, POST /api/v1/orders/{id}/pay|ship|cancel|refund change it,
through the write side's application service on --pg-url (migrations are
applied first). If-Match: "<version>" makes a command conditional (412 on
another version); Idempotency-Key makes it safe to retry: the key is stored
with the effect in one transaction and kept --idempotency-retention (purged
hourly). A command answers the order's version (ETag) and a consistency
token; a query sent with the header Consistency-Token: <token> (order
detail also ?min_version=) waits, up to Prefer: wait=N seconds (default 5,
at most --wait-limit), until its read model applied that version, else 503.`,
		Example: `  orderstream api --auth=none
  orderstream api --listen 0.0.0.0:8080 --oidc-issuer https://id.example.com/realms/shop \
      --oidc-audience orderstream-api --oidc-client-id orderstream-dashboard`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return stoppedCleanly(cmd.Context(), runAPI(cmd.Context(), g, fl))
		},
	}
	f := cmd.Flags()
	f.StringVar(&fl.listen, "listen", api.DefaultListen, "host:port to serve on (--auth=none: loopback only)")
	f.StringVar(&fl.auth, "auth", string(api.AuthOIDC), "authentication: oidc or none (local use only)")
	f.StringVar(&fl.issuer, "oidc-issuer", "", "OpenID Connect issuer URL (--auth=oidc)")
	f.StringVar(&fl.audience, "oidc-audience", "", "audience the API's access tokens must carry in aud (--auth=oidc)")
	f.StringVar(&fl.clientID, "oidc-client-id", "", "public OAuth client id the dashboard signs in with (--auth=oidc)")
	f.DurationVar(&fl.requestTimeout, "request-timeout", api.DefaultRequestTimeout, "deadline of each API request, including its read-model query")
	f.StringSliceVar(&fl.trustedProxies, "trusted-proxy", nil, "CIDR of a reverse proxy trusted for X-Forwarded-For (the client, for the per-client limit on rejected tokens) and X-Forwarded-Proto (HSTS); repeatable")
	f.StringVar(&fl.indexPrefix, "index-prefix", search.DefaultPrefix, "name prefix of the search read model's indexes and aliases (as for 'orderstream search')")
	f.BoolVar(&fl.commands, "commands", true, "serve the order commands (POST, scope orders:write) on --pg-url; --commands=false serves a read-only API without PostgreSQL")
	f.DurationVar(&fl.keyRetention, "idempotency-retention", store.DefaultKeyRetention, "how long idempotency keys are kept (a retry after that is a new command)")
	f.Int32Var(&fl.pgMaxConns, "pg-max-conns", defaultPGMaxConns, "PostgreSQL connections of the commands, at most (each command holds one for a few round trips)")
	f.DurationVar(&fl.waitLimit, "wait-limit", api.DefaultWaitLimit, "longest Prefer: wait a query may ask for while it waits for a consistency token")
	return cmd
}

func runAPI(ctx context.Context, g *globals, fl apiFlags) error {
	var proxies []netip.Prefix
	for _, c := range fl.trustedProxies {
		p, err := netip.ParsePrefix(strings.TrimSpace(c))
		if err != nil {
			return usagef("--trusted-proxy %q: want a CIDR such as 10.0.0.0/8 or fd00::/8: %v", c, err)
		}
		proxies = append(proxies, p.Masked())
	}
	queries, _, chConn, err := analyticsQueries(g)
	if err != nil {
		return fmt.Errorf("analytics read model: %w", err)
	}
	defer chConn.Close()
	scfg, err := searchConfig(g, fl.indexPrefix)
	if err != nil {
		return err
	}
	sq, err := search.NewQuery(scfg)
	if err != nil {
		return usagef("search read model: %v", err)
	}
	cfg := api.Config{
		Listen:         fl.listen,
		Auth:           api.AuthMode(fl.auth),
		OIDC:           api.OIDCConfig{Issuer: fl.issuer, Audience: fl.audience},
		ClientID:       fl.clientID,
		Analytics:      readmodel.Analytics{Q: queries, DB: chConn},
		Search:         readmodel.Search{Q: sq},
		WaitLimit:      fl.waitLimit,
		UI:             web.Files(),
		RequestTimeout: fl.requestTimeout,
		TrustedProxies: proxies,
	}
	// Settings first: a usage error before any connection is made.
	if err := cfg.Validate(); err != nil {
		return usagef("%v", err)
	}
	if fl.commands {
		if fl.keyRetention < time.Minute {
			return usagef("--idempotency-retention %s: want at least 1m (clients retry within it)", fl.keyRetention)
		}
		if fl.pgMaxConns < 1 {
			return usagef("--pg-max-conns %d: want at least 1", fl.pgMaxConns)
		}
		repo, closePool, err := openRepository(ctx, g, fl.pgMaxConns)
		if err != nil {
			return fmt.Errorf("%w (--commands=false serves the read-only API without PostgreSQL)", err)
		}
		defer closePool()
		cfg.Commands = command.NewHandler(repo, store.IsConflict)
		go purgeKeys(ctx, g, repo, fl.keyRetention)
	}
	srv, err := api.New(cfg, api.WithLogger(g.log))
	if err != nil {
		return usagef("%v", err)
	}
	defer srv.Close()
	return srv.Run(ctx)
}

// defaultPGMaxConns is the API's default --pg-max-conns: 32, enough for a
// few hundred commands a second at a few milliseconds each; pgx's own
// default (4 on this 2-core machine) queued commands for seconds at 100
// orders/s.
const defaultPGMaxConns = 32

// checkEventVersion refuses an --event-version no writer of this build
// emits (a usage error), before anything is connected: a wrong one would
// otherwise fail every command at its save.
func (g *globals) checkEventVersion() error {
	if g.eventVersion < schemas.OldestVersion || g.eventVersion > schemas.CurrentVersion {
		return usagef("--event-version %d: want %d to %d", g.eventVersion, schemas.OldestVersion, schemas.CurrentVersion)
	}
	return nil
}

// openRepository connects to --pg-url with at most maxConns connections,
// applies the migrations and returns the write side's repository and what
// closes its pool.
func openRepository(ctx context.Context, g *globals, maxConns int32) (*store.Repository, func(), error) {
	if err := g.checkEventVersion(); err != nil {
		return nil, nil, err
	}
	url, err := g.pgURL()
	if err != nil {
		return nil, nil, err
	}
	pcfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, nil, usagef("--pg-url: %v", err)
	}
	pcfg.MaxConns = maxConns
	pool, err := pgxpool.NewWithConfig(ctx, pcfg)
	if err != nil {
		return nil, nil, usagef("--pg-url: %v", err)
	}
	if _, err := store.Migrate(ctx, pool, g.log); err != nil {
		pool.Close()
		return nil, nil, err
	}
	v, err := schemas.NewValidator()
	if err != nil {
		pool.Close()
		return nil, nil, err
	}
	return store.NewRepository(pool, v, store.WithEventVersion(g.eventVersion)), pool.Close, nil
}

// keyPurgeInterval is how often the API deletes expired idempotency keys.
const keyPurgeInterval = time.Hour

// purgeKeys deletes idempotency keys older than retention now and every
// keyPurgeInterval until ctx ends; a failure is logged and retried at the
// next tick.
func purgeKeys(ctx context.Context, g *globals, repo *store.Repository, retention time.Duration) {
	tick := time.NewTicker(keyPurgeInterval)
	defer tick.Stop()
	for {
		n, err := repo.PurgeKeys(ctx, retention)
		if err != nil && ctx.Err() == nil {
			g.log.Warn("purge idempotency keys", "err", err)
		} else if n > 0 {
			g.log.Info("idempotency keys purged", "keys", n, "retention", retention)
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}
