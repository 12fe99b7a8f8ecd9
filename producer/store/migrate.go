package store

import (
	"context"
	"database/sql"
	"embed"
	"fmt"
	"log/slog"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/orderstream/orderstream/producer/relay/migrations"
	"github.com/pressly/goose/v3"
)

//go:embed migrations/*.sql
var storeMigrations embed.FS

// schema is every migration of the write side's database, applied as one
// goose sequence: this package's (orders, outbox) and the relay's
// (producer/relay/migrations: relay_checkpoint, relay_poll_cursor), which
// moved there under its applied version so existing databases are unchanged.
var schema = unionFS{mustSub(storeMigrations, "migrations"), migrations.FS}

// Migrate applies every embedded migration not yet applied — this
// package's and the relay's (producer/relay/migrations), one goose version
// sequence, version table goose_db_version — and returns the schema version
// reached. It is safe
// to run on every start; concurrent runs are serialized by goose's session
// lock.
func Migrate(ctx context.Context, pool *pgxpool.Pool, log *slog.Logger) (int64, error) {
	db := stdlib.OpenDBFromPool(pool)
	defer db.Close()
	return migrateDB(ctx, db, log)
}

func migrateDB(ctx context.Context, db *sql.DB, log *slog.Logger) (int64, error) {
	p, err := goose.NewProvider(goose.DialectPostgres, db, schema)
	if err != nil {
		return 0, fmt.Errorf("migrations: %w", err)
	}
	results, err := p.Up(ctx)
	if err != nil {
		return 0, fmt.Errorf("migrate up: %w", err)
	}
	for _, r := range results {
		log.Info("migration applied", "version", r.Source.Version, "file", r.Source.Path, "duration", r.Duration)
	}
	v, err := p.GetDBVersion(ctx)
	if err != nil {
		return 0, fmt.Errorf("read schema version: %w", err)
	}
	return v, nil
}
