package analytics_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/orderstream/orderstream/consumers"
	"github.com/orderstream/orderstream/internal/testenv"
	"github.com/orderstream/orderstream/projections/analytics"
	"github.com/orderstream/orderstream/schemas"
)

// testConfig returns a Config on the shared server with a database of the
// test's own, dropped at cleanup.
func testConfig(t testing.TB) analytics.Config {
	t.Helper()
	return databaseOn(t, testenv.ClickHouseAddr(t))
}

// databaseOn returns a Config on the server at addr with a database of the
// test's own, dropped at cleanup.
func databaseOn(t testing.TB, addr string) analytics.Config {
	t.Helper()
	cfg := analytics.Config{Addr: addr, Database: testenv.Name("a")}
	t.Cleanup(func() {
		conn, err := analytics.Open(cfg)
		if err != nil {
			t.Logf("drop database %s: %v", cfg.Database, err)
			return
		}
		defer conn.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		drop := "DROP DATABASE IF EXISTS `" + cfg.Database + "`"
		if cfg.Cluster != "" {
			drop += " ON CLUSTER `" + cfg.Cluster + "`"
		}
		if err := conn.Exec(ctx, drop); err != nil {
			t.Logf("drop database %s: %v", cfg.Database, err)
		}
	})
	return cfg
}

func newSink(t testing.TB, cfg analytics.Config) *analytics.Sink {
	t.Helper()
	s, err := analytics.NewSink(cfg)
	if err != nil {
		t.Fatalf("NewSink: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func newQueries(t testing.TB, cfg analytics.Config) (*analytics.Queries, *analytics.Store) {
	t.Helper()
	conn, err := analytics.Open(cfg)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	st, err := analytics.NewStore(conn, cfg.Database)
	if err != nil {
		t.Fatalf("NewStore: %v", err)
	}
	return analytics.New(conn, cfg.Database), st
}

// records wraps events as records of partition 0 at increasing offsets.
func records(events []schemas.Envelope) []consumers.Record {
	out := make([]consumers.Record, len(events))
	for i, e := range events {
		out[i] = consumers.Record{Topic: "t", Offset: int64(i), Key: []byte(e.AggregateID), Event: e}
	}
	return out
}

// writeAll writes events through s in batches of size n.
func writeAll(t testing.TB, s *analytics.Sink, events []schemas.Envelope, n int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	recs := records(events)
	for i := 0; i < len(recs); i += n {
		end := min(i+n, len(recs))
		if err := s.Write(ctx, recs[i:end]); err != nil {
			t.Fatalf("Write records %d..%d: %v", i, end, err)
		}
	}
}

func contains(s, sub string) bool { return strings.Contains(s, sub) }
