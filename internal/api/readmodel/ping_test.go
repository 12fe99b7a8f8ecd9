package readmodel

import (
	"context"
	"testing"
	"time"

	"github.com/orderstream/orderstream/internal/testenv"
	"github.com/orderstream/orderstream/projections/analytics"
	"github.com/orderstream/orderstream/projections/search"
)

// TestPingRealReadModels proves the pings behind the API's /readyz on the
// real services: ClickHouse answers, an unreachable one does not; the
// search read model is ready only once a generation serves.
func TestPingRealReadModels(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	conn, err := analytics.Open(analytics.Config{Addr: testenv.ClickHouseAddr(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if err := (Analytics{DB: conn}).Ping(ctx); err != nil {
		t.Fatalf("analytics ping: %v", err)
	}
	down, err := analytics.Open(analytics.Config{Addr: "127.0.0.1:1", DialTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer down.Close()
	if err := (Analytics{DB: down}).Ping(ctx); err == nil {
		t.Fatal("analytics ping of 127.0.0.1:1: nil; want an error")
	}
	if err := (Analytics{}).Ping(ctx); err == nil {
		t.Fatal("analytics ping without a connection: nil; want an error")
	}

	eng, err := search.NewEngine(search.EngineConfig{Kind: search.EngineOpenSearch, URL: testenv.SearchURL(t)})
	if err != nil {
		t.Fatal(err)
	}
	cfg := search.Config{Engine: eng, Prefix: testenv.Name("ping")}
	q, err := search.NewQuery(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := (Search{Q: q}).Ping(ctx); err == nil {
		t.Fatal("search ping before any generation serves: nil; want an error")
	}
	admin, err := search.NewAdmin(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := admin.DropAll(context.Background()); err != nil {
			t.Errorf("drop %s: %v", cfg.Prefix, err)
		}
	})
	if _, err := admin.Setup(ctx); err != nil {
		t.Fatal(err)
	}
	if err := (Search{Q: q}).Ping(ctx); err != nil {
		t.Fatalf("search ping with a serving generation: %v", err)
	}
}
