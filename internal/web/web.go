// Package web holds the browser dashboard of orderstream, built from the npm
// project beside this file (src/, package.json, build.mjs) into dist/, which
// is committed and embedded: a fresh clone serves the dashboard with no npm
// and no network at run time.
//
// Rebuild after changing src/: `npm --prefix internal/web ci && npm
// --prefix internal/web run build` (or `make web`), then commit dist/.
//
// The dashboard is a static single-page app (index.html, app.js, app.css)
// that reads only the JSON API of package api. Sign-in is the OAuth 2.0
// authorization code flow with PKCE as a public client; the access token is
// held in the page's memory only (never localStorage, sessionStorage or a
// cookie), so a reload signs in again.
package web

import (
	"embed"
	"io/fs"
)

//go:embed dist
var dist embed.FS

// Files returns the built dashboard: index.html at its root, app.js,
// app.css, and gzip-compressed copies (NAME.gz) of each.
func Files() fs.FS {
	sub, err := fs.Sub(dist, "dist")
	if err != nil {
		panic("web: embedded dist missing: " + err.Error()) // impossible: dist is embedded at build time
	}
	return sub
}
