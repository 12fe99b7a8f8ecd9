package chdb_test

import (
	"context"
	"database/sql"
	"errors"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/orderstream/orderstream/internal/chdb"
	"github.com/shopspring/decimal"
)

func TestConnStatementsBatchesAndErrors(t *testing.T) {
	c := chdb.StartForTest(t)
	ctx := context.Background()
	v, err := c.ServerVersion()
	if err != nil || v.Version.Major < 20 {
		t.Fatalf("ServerVersion() = %+v, %v; want a current release", v, err)
	}
	for _, st := range []string{
		"CREATE DATABASE IF NOT EXISTS d",
		"CREATE TABLE d.t (k String, amount Decimal(18, 3), at DateTime('UTC'), n UInt32) ENGINE = MergeTree ORDER BY k",
	} {
		if err := c.Exec(ctx, st); err != nil {
			t.Fatalf("%s: %v", st, err)
		}
	}
	at := time.Date(2011, 3, 27, 1, 30, 0, 0, time.UTC)
	b, err := c.PrepareBatch(ctx, "INSERT INTO `d`.`t` (n, k, amount, at)")
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Append(uint32(1), "Côte d'Ivoire", decimal.RequireFromString("12.345"), at); err != nil {
		t.Fatal(err)
	}
	if err := b.Column(0).Append([]uint32{2}); err != nil {
		t.Fatal(err)
	}
	for i, v := range []any{[]string{`back\slash`}, []decimal.Decimal{decimal.RequireFromString("-0.001")}, []time.Time{at.Add(time.Hour)}} {
		if err := b.Column(i + 1).Append(v); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.Send(); err != nil {
		t.Fatal(err)
	}
	// clickhouse-go's own type checks: a float64 for a Decimal is refused.
	b, err = c.PrepareBatch(ctx, "INSERT INTO d.t (k, amount, at, n)")
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Append("x", 1.5, at, uint32(3)); err == nil {
		t.Error("Append of a float64 to a Decimal column: no error")
	}
	_ = b.Abort()

	var amount decimal.Decimal
	var when time.Time
	var n uint32
	for _, k := range []string{"Côte d'Ivoire", `back\slash`} {
		if err := c.QueryRow(ctx, "SELECT amount, at, n FROM d.t WHERE k = ?", k).Scan(&amount, &when, &n); err != nil {
			t.Fatalf("row %q: %v", k, err)
		}
	}
	if amount.String() != "-0.001" || !when.Equal(at.Add(time.Hour)) || n != 2 {
		t.Errorf("row = %s %s %d", amount, when, n)
	}
	var wrong int64
	if err := c.QueryRow(ctx, "SELECT n FROM d.t LIMIT 1").Scan(&wrong); err == nil {
		t.Error("Scan of UInt32 into *int64: no error (clickhouse-go refuses it)")
	}
	if err := c.QueryRow(ctx, "SELECT n FROM d.t WHERE k = 'none'").Scan(&n); !errors.Is(err, sql.ErrNoRows) {
		t.Errorf("empty QueryRow: %v, want sql.ErrNoRows", err)
	}
	rows, err := c.Query(ctx, "SELECT k FROM d.t ORDER BY k")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for rows.Next() {
		var k string
		if err := rows.Scan(&k); err != nil {
			t.Fatal(err)
		}
		got = append(got, k)
	}
	if len(got) != 2 || got[0] != "Côte d'Ivoire" {
		t.Errorf("rows = %q", got)
	}
	// A result of several blocks (one per part here): every row comes back.
	for i := 3; i <= 5; i++ {
		b, err := c.PrepareBatch(ctx, "INSERT INTO d.t (k, amount, at, n)")
		if err != nil {
			t.Fatal(err)
		}
		if err := b.Append("part", decimal.Zero, at, uint32(i)); err != nil {
			t.Fatal(err)
		}
		if err := b.Send(); err != nil {
			t.Fatal(err)
		}
	}
	rows, err = c.Query(ctx, "SELECT n FROM d.t")
	if err != nil {
		t.Fatal(err)
	}
	var sum uint32
	for rows.Next() {
		if err := rows.Scan(&n); err != nil {
			t.Fatal(err)
		}
		sum += n
	}
	if sum != 1+2+3+4+5 {
		t.Errorf("sum of n over every part = %d, want 15", sum)
	}

	var ex *clickhouse.Exception
	if err := c.Exec(ctx, "CREATE TABLE d.bad (projection String) ENGINE = Memory"); !errors.As(err, &ex) || ex.Code != 62 {
		t.Errorf("syntax error: %v, want a *clickhouse.Exception with code 62", err)
	}
	if err := c.Exec(ctx, "SELECT 1"); err != nil {
		t.Errorf("statement after an error: %v", err)
	}
}

func TestStartWithoutInterpreter(t *testing.T) {
	_, err := chdb.Start(chdb.Config{Dir: t.TempDir(), Python: "no-such-python-3"})
	if !errors.Is(err, chdb.ErrUnavailable) {
		t.Fatalf("Start: %v, want ErrUnavailable", err)
	}
}
