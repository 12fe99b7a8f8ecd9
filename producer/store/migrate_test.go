package store

import (
	"bytes"
	"context"
	"io/fs"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/orderstream/orderstream/internal/testenv"
)

// The relay's migration moved to producer/relay/migrations under the version
// it was applied as (2): the schema still lists both files in version order.
func TestSchemaListsStoreAndRelayMigrations(t *testing.T) {
	got, err := fs.Glob(schema, "*.sql")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"00001_orders_outbox.sql", "00002_relay.sql", "00003_idempotency_keys.sql", "00004_relay_parked.sql"}
	if !slices.Equal(got, want) {
		t.Fatalf("schema files = %v, want %v", got, want)
	}
	if _, err := fs.ReadFile(schema, "00002_relay.sql"); err != nil {
		t.Fatalf("open the relay's migration through the schema: %v", err)
	}
}

func TestUnionFSRefusesAFileInTwoDirectories(t *testing.T) {
	u := unionFS{
		fstest.MapFS{"00001_a.sql": {Data: []byte("-- a")}},
		fstest.MapFS{"00001_a.sql": {Data: []byte("-- b")}, "00002_b.sql": {}},
	}
	if _, err := fs.Glob(u, "*.sql"); err == nil || !strings.Contains(err.Error(), "00001_a.sql") {
		t.Fatalf("Glob = %v, want an error naming 00001_a.sql", err)
	}
	if _, err := u.Open("missing.sql"); err == nil {
		t.Fatal("Open of a missing file succeeded")
	}
}

// A database migrated before the move (versions 1 and 2 applied) and one
// migrated after are the same: Migrate reaches the latest version (4, the
// relay's parked events), creates the relay's tables, and a second run applies
// nothing.
func TestMigrateCreatesRelayTablesOnceAtVersion2(t *testing.T) {
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, testenv.NewDatabase(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	for i, wantApplied := range []int{4, 0} {
		var logs bytes.Buffer
		v, err := Migrate(ctx, pool, slog.New(slog.NewTextHandler(&logs, nil)))
		if err != nil {
			t.Fatalf("run %d: %v", i+1, err)
		}
		if v != 4 {
			t.Errorf("run %d: version %d, want 4", i+1, v)
		}
		if n := strings.Count(logs.String(), "migration applied"); n != wantApplied {
			t.Errorf("run %d: %d migrations applied, want %d:\n%s", i+1, n, wantApplied, logs.String())
		}
	}
	var checkpoint, cursor bool
	if err := pool.QueryRow(ctx, `SELECT to_regclass('relay_checkpoint') IS NOT NULL, to_regclass('relay_poll_cursor') IS NOT NULL`).Scan(&checkpoint, &cursor); err != nil {
		t.Fatal(err)
	}
	if !checkpoint || !cursor {
		t.Fatalf("relay_checkpoint exists %v, relay_poll_cursor exists %v; want both", checkpoint, cursor)
	}
}
