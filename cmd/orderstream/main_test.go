package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestExitCode(t *testing.T) {
	t.Parallel()
	stopped, cancel := context.WithCancel(context.Background())
	cancel()
	canceled := fmt.Errorf("rebuild of analytics generation 3 stopped: %w", context.Canceled)
	tests := []struct {
		name string
		err  error
		want int
	}{
		{"success", nil, 0},
		{"usage", usagef("--limit 0: want 1..1000"), 2},
		{"failure", errors.New("clickhouse unreachable"), 1},
		{"command stopped by a signal", canceled, 130},
		{"daemon stopped by a signal", stoppedCleanly(stopped, canceled), 0},
		{"daemon failed by itself", stoppedCleanly(context.Background(), errors.New("boom")), 1},
		{"daemon cancelled from inside, not by a signal", stoppedCleanly(context.Background(), canceled), 130},
	}
	for _, tt := range tests {
		if got := exitCode(tt.err); got != tt.want {
			t.Errorf("%s: exitCode(%v) = %d, want %d", tt.name, tt.err, got, tt.want)
		}
	}
}

// TestStatusBoundsUsage: a negative health bound is a usage error naming
// its flag, not a report that calls every group unhealthy.
func TestStatusBoundsUsage(t *testing.T) {
	t.Parallel()
	for flag, value := range map[string]string{"--max-lag": "-5", "--max-staleness": "-1m", "--max-slot-lag-bytes": "-1"} {
		err := newRootWith(context.Background(), "status", flag, value, "--pg-url", "postgres://x@127.0.0.1:1/x",
			"--kafka-brokers", "127.0.0.1:1", "--clickhouse-addr", "127.0.0.1:1", "--search-url", "http://127.0.0.1:1", "--timeout", "1s")
		if exitCode(err) != 2 || !strings.Contains(fmt.Sprint(err), flag+" "+value) {
			t.Errorf("status %s %s: exit %d, %v; want a usage error naming the flag", flag, value, exitCode(err), err)
		}
	}
}

// TestLoadSettingsUsage: a bad --url or rate is a usage error before any
// order is sent, whichever rate of --rates it is.
func TestLoadSettingsUsage(t *testing.T) {
	t.Parallel()
	csv := filepath.Join(t.TempDir(), "shapes.csv")
	if err := os.WriteFile(csv, []byte("InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country\n"+
		"536365,85123A,WHITE HANGING HEART T-LIGHT HOLDER,6,2010-12-01 08:26:00,2.55,17850,United Kingdom\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"--url", "ftp://x", "--rates", "1"}, `--url "ftp://x"`},
		{[]string{"--url", "http://127.0.0.1:1", "--rates", "5,0"}, "rate 0 orders/s"},
		{[]string{"--url", "http://127.0.0.1:1", "--rates", "-5"}, "rate -5 orders/s"},
	} {
		err := newRootWith(context.Background(), append([]string{"load", "--file", csv, "--duration", "1s"}, tt.args...)...)
		if exitCode(err) != 2 || !strings.Contains(fmt.Sprint(err), tt.want) {
			t.Errorf("load %v: exit %d, %v; want a usage error naming %q", tt.args, exitCode(err), err, tt.want)
		}
	}
}

// TestTopicCreateUsage: a bad --topic, --partitions or --replication-factor
// is a usage error (exit 2) naming it, before any broker is asked.
func TestTopicCreateUsage(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"--topic", ""}, "topic name is empty"},
		{[]string{"--partitions", "-3"}, "partitions -3"},
		{[]string{"--replication-factor", "-2"}, "replication factor -2"},
	} {
		err := newRootWith(context.Background(), append([]string{"topic", "create", "--kafka-brokers", "127.0.0.1:1"}, tt.args...)...)
		if exitCode(err) != 2 || !strings.Contains(fmt.Sprint(err), tt.want) {
			t.Errorf("topic create %v: exit %d, %v; want a usage error naming %q", tt.args, exitCode(err), err, tt.want)
		}
	}
}

// TestEventVersionUsage: an --event-version this build does not write is a
// usage error naming it for every writer, before PostgreSQL is reached
// (orders and api used to start and fail each command at its save).
func TestEventVersionUsage(t *testing.T) {
	t.Parallel()
	pg := []string{"--pg-url", "postgres://x@127.0.0.1:1/x", "--event-version"}
	for _, args := range [][]string{
		append([]string{"orders", "pay", "x", "--amount", "1"}, append(pg, "3")...),
		append([]string{"orders", "cancel", "x", "--reason", "test"}, append(pg, "0")...),
		append([]string{"api", "--listen", "127.0.0.1:0", "--auth", "none", "--kafka-brokers", "127.0.0.1:1",
			"--clickhouse-addr", "127.0.0.1:1", "--search-url", "http://127.0.0.1:1"}, append(pg, "3")...),
	} {
		err := newRootWith(context.Background(), args...)
		if exitCode(err) != 2 || !strings.Contains(fmt.Sprint(err), "--event-version") {
			t.Errorf("%v: exit %d, %v; want a usage error naming --event-version", args, exitCode(err), err)
		}
	}
}

// TestReplayShadowUsage: a bad --batch-max-records, --members or --settle
// of a shadow rebuild is a usage error naming the flag, before PostgreSQL
// or Kafka is reached.
func TestReplayShadowUsage(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"--batch-max-records", "-1"}, "--batch-max-records -1"},
		{[]string{"--members", "65"}, "--members 65"},
		{[]string{"--members", "-2"}, "--members -2"},
		{[]string{"--settle", "-1s"}, "--settle -1s"},
	} {
		err := newRootWith(context.Background(), append([]string{"replay", "analytics", "--pg-url", "postgres://x@127.0.0.1:1/x",
			"--kafka-brokers", "127.0.0.1:1", "--clickhouse-addr", "127.0.0.1:1"}, tt.args...)...)
		if exitCode(err) != 2 || !strings.Contains(fmt.Sprint(err), tt.want) {
			t.Errorf("replay %v: exit %d, %v; want a usage error naming %q", tt.args, exitCode(err), err, tt.want)
		}
	}
}
