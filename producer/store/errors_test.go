package store_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/orderstream/orderstream/internal/testenv"
	"github.com/orderstream/orderstream/producer/store"
)

// refusedConnection returns the error of connecting to a port nobody
// listens on: what every query meets while PostgreSQL is down.
func refusedConnection(t *testing.T) error {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err = pgx.Connect(ctx, "postgres://x:y@"+addr+"/z?sslmode=disable&connect_timeout=2")
	if err == nil {
		t.Fatal("connected to a closed port")
	}
	return err
}

// wrongPassword returns the error of connecting to the shared server with a
// wrong password.
func wrongPassword(t *testing.T) error {
	t.Helper()
	u, err := url.Parse(testenv.PostgresURL(t))
	if err != nil {
		t.Fatal(err)
	}
	u.User = url.UserPassword(u.User.Username(), "not-the-password")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err = pgx.Connect(ctx, u.String())
	if err == nil {
		t.Fatal("connected with a wrong password")
	}
	return err
}

func TestClassify(t *testing.T) {
	t.Parallel()
	pg := func(code string) error { return fmt.Errorf("save order: %w", &pgconn.PgError{Code: code}) }
	tests := []struct {
		name string
		give error
		want store.Class
	}{
		{"admin shutdown (restart)", pg("57P01"), store.Transient},
		{"crash shutdown", pg("57P02"), store.Transient},
		{"cannot connect now (starting up)", pg("57P03"), store.Transient},
		{"connection failure", pg("08006"), store.Transient},
		{"serialization failure", pg("40001"), store.Transient},
		{"deadlock", pg("40P01"), store.Transient},
		{"too many connections", pg("53300"), store.Transient},
		{"connection refused (server down)", refusedConnection(t), store.Transient},
		{"connection closed", fmt.Errorf("commit: %w", pgconn.ErrConnClosed), store.Transient},
		{"connection reset mid-read", fmt.Errorf("read: %w", io.ErrUnexpectedEOF), store.Transient},
		{"invalid byte sequence", pg("22021"), store.Refused},
		{"numeric overflow", pg("22003"), store.Refused},
		{"check violation", pg("23514"), store.Refused},
		{"row too big", pg("54000"), store.Refused},
		{"permission denied", pg("42501"), store.Fatal},
		{"undefined table", pg("42P01"), store.Fatal},
		{"authentication failed", wrongPassword(t), store.Fatal},
		{"cancelled", fmt.Errorf("save: %w", context.Canceled), store.Fatal},
		{"unknown", errors.New("something else"), store.Fatal},
	}
	for _, tt := range tests {
		if got := store.Classify(tt.give); got != tt.want {
			t.Errorf("%s: Classify(%v) = %s, want %s", tt.name, tt.give, got, tt.want)
		}
	}
}
