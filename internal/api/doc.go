// Package api is the HTTP JSON API of orderstream — queries over the read
// models and the order commands — and the server that also hands out the
// browser dashboard.
//
// Endpoints (documented in openapi.json, served at /openapi.json):
//
//	GET /api/v1/analytics/summary       analytics:read
//	GET /api/v1/analytics/revenue       analytics:read  (?by=day|month|country)
//	GET /api/v1/analytics/top-products  analytics:read  (?by=revenue|quantity&limit=)
//	GET /api/v1/analytics/return-rate   analytics:read
//	GET /api/v1/orders/search           orders:search   (alias: GET /orders/search)
//	GET /api/v1/orders/{id}             orders:search   (?min_version=)
//	POST /api/v1/orders                 orders:write    place (201)
//	POST /api/v1/orders/{id}/pay|ship|cancel|refund  orders:write
//	GET /api/v1/config                  public: how the dashboard signs in
//	GET /openapi.json, /healthz         public
//	GET /                               public: the dashboard (static files)
//
// Guarantees:
//   - No metric is computed here: every number comes from the Analytics and
//     Search read-model interfaces, the same queries the CLI runs. The one
//     exception is the "rest" row of revenue by country, an exact decimal
//     sum of the per-country rows the query returned (additive metrics only).
//   - Money travels as JSON decimal strings, never JSON numbers, with at
//     least 3 decimals ("2.550"), exactly as the read model returned it.
//   - Every error is application/problem+json (RFC 9457); a bad parameter
//     gets 400 with the parameter's name in "detail" and in "invalid_params".
//   - Bearer JWT access tokens are verified against an OpenID Connect issuer
//     (see OIDC): issuer, audience, RS256/ES256 only, exp/nbf with a small
//     leeway, and a scope per endpoint. Mode "none" grants every scope and
//     is refused on any address but loopback.
//   - Every request runs under a deadline (Config.RequestTimeout); query
//     strings and bodies are size-limited; page sizes are capped.
//   - Tokens and Authorization headers are never logged.
//   - Commands go through producer/command (the write side's application
//     service): If-Match makes one conditional (412), an Idempotency-Key
//     is stored with its effect in one transaction (a retry answers the
//     first response); a refusal is a problem naming the rule (409/422).
//   - A query with a Consistency-Token header (order detail also
//     ?min_version=) waits, up to Prefer: wait=N (Config.WaitLimit), until
//     its read model applied that version of the order, else 503
//     read-model-behind.
package api
