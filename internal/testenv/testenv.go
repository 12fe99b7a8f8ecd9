// Package testenv hands integration tests the real services they run
// against, and isolates tests from each other on them.
//
// Where a service comes from, in order:
//  1. its environment variable (ORDERSTREAM_PG_URL, ORDERSTREAM_KAFKA_BROKERS,
//     ORDERSTREAM_CLICKHOUSE_ADDR, ORDERSTREAM_SEARCH_URL), as printed by
//     `deploy/local/services.sh env` — what `make test` and CI use;
//  2. where a Docker engine answers, a container started by testcontainers-go
//     (once per test binary, see containers.go);
//  3. otherwise the test is skipped with a message — except under CI=true,
//     where a missing service fails the test: CI never skips silently.
package testenv

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// Environment variables naming the services.
const (
	EnvPostgres   = "ORDERSTREAM_PG_URL"
	EnvKafka      = "ORDERSTREAM_KAFKA_BROKERS"
	EnvClickHouse = "ORDERSTREAM_CLICKHOUSE_ADDR"
	EnvSearch     = "ORDERSTREAM_SEARCH_URL"
)

// InCI reports whether the tests run under CI (CI=true).
func InCI() bool { return os.Getenv("CI") == "true" }

func service(t testing.TB, env string, container func(testing.TB) (string, error)) string {
	t.Helper()
	if v := os.Getenv(env); v != "" {
		return v
	}
	if dockerAvailable() {
		v, err := container(t)
		if err != nil {
			t.Fatalf("%s unset and starting a container failed: %v", env, err)
		}
		return v
	}
	msg := fmt.Sprintf("%s is not set and no Docker engine answers: start the services with `deploy/local/services.sh up` and `eval \"$(deploy/local/services.sh env)\"`, or run `make test`", env)
	if InCI() {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}

// PostgresURL returns the URL of the shared PostgreSQL server (wal_level=logical).
func PostgresURL(t testing.TB) string { return service(t, EnvPostgres, postgresContainer) }

// KafkaBrokers returns the seed brokers of the shared Kafka cluster.
func KafkaBrokers(t testing.TB) []string {
	return strings.Split(service(t, EnvKafka, kafkaContainer), ",")
}

// ClickHouseAddr returns host:port of the shared ClickHouse native protocol.
func ClickHouseAddr(t testing.TB) string { return service(t, EnvClickHouse, clickhouseContainer) }

// EnvClickHouseCurrent names a ClickHouse server of a current release
// (native protocol host:port) for the analytics compatibility suite, beside
// the shared one of EnvClickHouse.
const EnvClickHouseCurrent = "ORDERSTREAM_CLICKHOUSE_CURRENT_ADDR"

// CurrentClickHouseAddr returns host:port of a ClickHouse server of a
// current release: EnvClickHouseCurrent, else, where a Docker engine
// answers, the clickhouse-server:25.8 container (the one ClickHouseAddr
// starts without EnvClickHouse); "" when neither exists (never skips: the
// suite then checks current releases on chDB alone).
func CurrentClickHouseAddr(t testing.TB) string {
	t.Helper()
	if v := os.Getenv(EnvClickHouseCurrent); v != "" {
		return v
	}
	if !dockerAvailable() {
		return ""
	}
	v, err := clickhouseContainer(t)
	if err != nil {
		t.Fatalf("%s unset and starting a container failed: %v", EnvClickHouseCurrent, err)
	}
	return v
}

// SearchURL returns the base URL of the shared search engine.
func SearchURL(t testing.TB) string { return service(t, EnvSearch, searchContainer) }

// Name returns a short unique lower-case name with prefix, for a test's own
// database, topic, consumer group, slot or index.
func Name(prefix string) string {
	b := make([]byte, 5)
	_, _ = rand.Read(b)
	return prefix + "_" + hex.EncodeToString(b)
}

// EnvPostgresPasswordFile names a file holding the password of
// EnvPostgres's user when its URL has none (the secure profile of
// deploy/local prints both).
const EnvPostgresPasswordFile = "ORDERSTREAM_PG_PASSWORD_FILE"

// withPasswordFile returns the URL base with the password of
// EnvPostgresPasswordFile (trailing newline trimmed), or base unchanged when
// that variable is unset.
func withPasswordFile(t testing.TB, base string) string {
	t.Helper()
	file := os.Getenv(EnvPostgresPasswordFile)
	if file == "" {
		return base
	}
	pw, err := os.ReadFile(file)
	if err != nil {
		t.Fatalf("%s: %v", EnvPostgresPasswordFile, err)
	}
	u, err := url.Parse(base)
	if err != nil {
		t.Fatalf("%s: not a URL", EnvPostgres)
	}
	u.User = url.UserPassword(u.User.Username(), strings.TrimRight(string(pw), "\r\n"))
	return u.String()
}

// NewDatabase creates a fresh PostgreSQL database for the test and returns
// its URL (with the password of EnvPostgres's URL; without one when the
// password comes from EnvPostgresPasswordFile). At cleanup it drops the
// database together with any replication slot created in it.
func NewDatabase(t testing.TB) string {
	t.Helper()
	base := PostgresURL(t)
	admin := withPasswordFile(t, base)
	name := Name("t")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, admin)
	if err != nil {
		t.Fatalf("connect %s: %v", EnvPostgres, err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatalf("create database %s: %v", name, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, admin)
		if err != nil {
			t.Logf("drop database %s: %v", name, err)
			return
		}
		defer conn.Close(ctx)
		_, _ = conn.Exec(ctx, `SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots WHERE database = $1 AND active_pid IS NOT NULL`, name)
		_, _ = conn.Exec(ctx, `SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE database = $1`, name)
		if _, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			t.Logf("drop database %s: %v", name, err)
		}
	})
	u, err := url.Parse(base)
	if err != nil {
		t.Fatalf("%s: %v", EnvPostgres, err)
	}
	u.Path = "/" + name
	return u.String()
}
