// Package e2e holds the end-to-end browser test of the dashboard: headless
// Chromium (Debian's chromium package, driven by chromedp) against
// `orderstream api`'s server on the real read models (ClickHouse and the
// search engine) built from the real file's events. See e2e_test.go.
package e2e
