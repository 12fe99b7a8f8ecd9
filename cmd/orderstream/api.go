package main

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
	"time"

	"github.com/orderstream/orderstream/internal/api"
	"github.com/orderstream/orderstream/internal/api/readmodel"
	"github.com/orderstream/orderstream/internal/web"
	"github.com/orderstream/orderstream/projections/search"
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
        name (DNS rebinding).`,
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
	srv, err := api.New(api.Config{
		Listen:         fl.listen,
		Auth:           api.AuthMode(fl.auth),
		OIDC:           api.OIDCConfig{Issuer: fl.issuer, Audience: fl.audience},
		ClientID:       fl.clientID,
		Analytics:      readmodel.Analytics{Q: queries, DB: chConn},
		Search:         readmodel.Search{Q: sq},
		UI:             web.Files(),
		RequestTimeout: fl.requestTimeout,
		TrustedProxies: proxies,
	}, api.WithLogger(g.log))
	if err != nil {
		return usagef("%v", err)
	}
	defer srv.Close()
	return srv.Run(ctx)
}
