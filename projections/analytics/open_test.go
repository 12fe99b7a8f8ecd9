package analytics

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// TestOpenDialsThroughConfig: a Config's Dial (internal/connect's TLS
// dialer) is what every connection goes through, and its error reaches the
// caller as it is.
func TestOpenDialsThroughConfig(t *testing.T) {
	t.Parallel()
	var dialled atomic.Value
	conn, err := Open(Config{Addr: "clickhouse.example:9440", TLS: &tls.Config{MinVersion: tls.VersionTLS12}, DialTimeout: time.Second,
		Dial: func(_ context.Context, addr string) (net.Conn, error) {
			dialled.Store(addr)
			return nil, errors.New("clickhouse at " + addr + ": TLS handshake failed: set --clickhouse-tls-ca-file")
		}})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err = conn.Ping(ctx)
	if got, _ := dialled.Load().(string); got != "clickhouse.example:9440" {
		t.Fatalf("Dial called with %q, want clickhouse.example:9440", got)
	}
	if err == nil || !strings.Contains(err.Error(), "--clickhouse-tls-ca-file") {
		t.Fatalf("Ping = %v, want the dialer's error", err)
	}
}
