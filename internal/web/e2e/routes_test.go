package e2e

import (
	"context"
	"io"
	"log/slog"
	"net"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/shopspring/decimal"

	"github.com/orderstream/orderstream/internal/api"
	"github.com/orderstream/orderstream/internal/web"
)

// TestRoutes opens each kind of hash route in headless Chromium and checks
// that the view rendered and the nav link highlighted come from the same
// route: an unknown route (#/orders without an id was one) renders the
// not-found view and highlights nothing, instead of Analytics under a lit
// Orders link. The read models are fakes: this test is about routing.
func TestRoutes(t *testing.T) {
	chromium := browser(t)
	base := startAPI(t, api.Config{
		Auth: api.AuthNone, Listen: "127.0.0.1:0",
		Analytics: fixedAnalytics{net: "1.000"}, Search: oneOrder{},
		UI: web.Files(),
	})
	bctx, problems := newBrowser(t, chromium)
	tests := []struct {
		name     string
		hash     string
		wantView string
		wantNav  string // id of the highlighted nav link; "" for none
	}{
		{"no hash", "", "analytics", "nav-analytics"},
		{"analytics", "#/analytics", "analytics", "nav-analytics"},
		{"search", "#/search?q=heart", "search", "nav-search"},
		{"an order", "#/orders/0b6d1f3c-9a43-4a4b-9e1c-000000000001", "order", "nav-search"},
		{"orders without an id", "#/orders", "not-found", ""},
		{"unknown", "#/analytics/2011", "not-found", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			do(t, bctx, "open "+tt.hash,
				chromedp.Navigate(base+"/"+tt.hash),
				chromedp.WaitReady(chromedp.CSS(`#app[data-view="`+tt.wantView+`"]`)),
			)
			nav := get(t, bctx, chromedp.Evaluate[[]string](`[...document.querySelectorAll(".topbar nav a.active")].map(a => a.id)`))
			want := []string{}
			if tt.wantNav != "" {
				want = []string{tt.wantNav}
			}
			if len(nav) != len(want) || (len(want) == 1 && nav[0] != want[0]) {
				t.Errorf("%q highlights %q; want %q", tt.hash, nav, want)
			}
			if tt.wantView == "not-found" {
				if got := get(t, bctx, chromedp.Text(chromedp.CSS("#not-found code"))); got != tt.hash {
					t.Errorf("not-found view names %q; want %q", got, tt.hash)
				}
			}
		})
	}
	for _, p := range problems() {
		t.Errorf("browser: %s", p)
	}
}

// oneOrder finds no order in a search and has every order id, each an
// order without lines.
type oneOrder struct{ emptySearch }

func (oneOrder) Get(_ context.Context, id string) (api.Order, error) {
	z := api.NewAmount(decimal.Zero)
	return api.Order{
		OrderSummary: api.OrderSummary{ID: id, OrderNumber: "536365", Kind: "sale", Status: "placed", Country: "France",
			PlacedAt: time.Date(2010, 12, 1, 8, 26, 0, 0, time.UTC), Total: z},
		Paid: z, Refunded: z, UpdatedAt: time.Date(2010, 12, 1, 8, 26, 0, 0, time.UTC), Version: 1, Lines: []api.OrderLine{},
	}, nil
}

// startAPI serves cfg on a free local port until the test ends and returns
// its base URL.
func startAPI(t *testing.T, cfg api.Config) string {
	t.Helper()
	srv, err := api.New(cfg, api.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))))
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ctx, ln) }()
	t.Cleanup(func() {
		stop()
		if err := <-served; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	return "http://" + ln.Addr().String()
}
