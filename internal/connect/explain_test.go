package connect

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"strings"
	"testing"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/twmb/franz-go/pkg/kerr"
)

// statusErr is the shape of the search adapter's *search.EngineError.
type statusErr struct {
	status int
	url    string
	engine bool
}

func (e statusErr) Error() string    { return fmt.Sprintf("HTTP %d", e.status) }
func (e statusErr) HTTPStatus() int  { return e.status }
func (e statusErr) BaseURL() string  { return e.url }
func (e statusErr) FromEngine() bool { return e.engine }

func TestExplain(t *testing.T) {
	t.Parallel()
	plain := errors.New("boom")
	tests := []struct {
		name string
		give error
		want []string // nil: unchanged
	}{
		{"nil", nil, nil},
		{"other error", plain, nil},
		{"kafka SASL", fmt.Errorf("list topics: %w", kerr.SaslAuthenticationFailed), []string{"--kafka-sasl-user", "--kafka-sasl-password(-file)"}},
		{"kafka mechanism", kerr.UnsupportedSaslMechanism, []string{"--kafka-sasl-mechanism"}},
		{"clickhouse wrong password", fmt.Errorf("ping: %w", &clickhouse.Exception{Code: 193, Message: "Wrong password for user orderstream"}), []string{"--clickhouse-user", "--clickhouse-password(-file)"}},
		{"clickhouse other", &clickhouse.Exception{Code: 60}, nil},
		{"postgres password", &pgconn.PgError{Code: "28P01"}, []string{"--pg-url", "--pg-password-file"}},
		{"search 401", fmt.Errorf("search orders: %w", statusErr{401, "https://127.0.0.1:59143", false}), []string{"search at https://127.0.0.1:59143", "--search-user", "--search-password(-file)"}},
		{"search 403", statusErr{403, "https://h:9200", true}, []string{"search at https://h:9200", "--search-user"}},
		{"search proxy 400 to http", statusErr{400, "http://127.0.0.1:59143", false}, []string{"search at http://127.0.0.1:59143", "https://127.0.0.1:59143 in --search-url"}},
		{"search engine 400", statusErr{400, "http://h:9200", true}, nil},
		{"search proxy 400 to https", statusErr{400, "https://h:9200", false}, nil},
		{"search 404", statusErr{404, "http://h:9200", true}, nil},
		{"TLS alert without postgres", &net.OpError{Op: "remote error", Err: tls.AlertError(45)}, nil},
	}
	for _, tt := range tests {
		got := Explain(tt.give)
		if tt.want == nil {
			if got != tt.give {
				t.Errorf("%s: Explain changed %v into %v", tt.name, tt.give, got)
			}
			continue
		}
		if !errors.Is(got, tt.give) {
			t.Errorf("%s: Explain's error does not wrap the original", tt.name)
		}
		for _, w := range tt.want {
			if !strings.Contains(got.Error(), w) {
				t.Errorf("%s: %q does not name %q", tt.name, got, w)
			}
		}
	}
}

// TestExplainPostgresReset: a server that resets the connection before its
// first answer (what a TLS 1.3 refusal of the client certificate often
// looks like from the client) is explained with the client certificate
// settings to check; a real pgx connection to a listener that resets.
func TestExplainPostgresReset(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			buf := make([]byte, 8)
			_, _ = c.Read(buf)                // the start of the startup message
			_ = c.(*net.TCPConn).SetLinger(0) // close with RST
			_ = c.Close()
		}
	}()
	_, err = pgconn.Connect(context.Background(), "postgres://u@"+ln.Addr().String()+"/db?sslmode=disable&connect_timeout=5")
	if err == nil {
		t.Fatal("connected to a listener that resets")
	}
	got := Explain(err)
	for _, w := range []string{"reset the connection", "sslcert and sslkey in --pg-url"} {
		if !strings.Contains(got.Error(), w) {
			t.Errorf("%q does not name %q", got, w)
		}
	}
	if !errors.Is(got, err) {
		t.Error("Explain's error does not wrap the original")
	}
}
