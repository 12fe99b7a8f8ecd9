package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/orderstream/orderstream/producer/command"
	"github.com/orderstream/orderstream/producer/order"
	"github.com/orderstream/orderstream/schemas"
)

var _ command.KeyStore = (*Repository)(nil)

// DefaultKeyRetention is how long idempotency keys are kept by default: 24
// hours, the window the IETF Idempotency-Key draft suggests servers
// publish; a retry later than that is a new command.
const DefaultKeyRetention = 24 * time.Hour

// SaveKeyed is Save that also stores the idempotency key k with the
// command's receipt r in the same transaction (table idempotency_keys): the
// key exists exactly when the effect committed. When another request stored
// (k.Scope, k.Key) first — the primary key makes a concurrent one wait for
// it — nothing is written and the error wraps command.ErrKeyTaken.
func (r *Repository) SaveKeyed(ctx context.Context, o *order.Order, md schemas.Metadata, k command.Key, rc command.Receipt) error {
	return r.save(ctx, o, md, &lastStatement{
		sql: `INSERT INTO idempotency_keys (scope, key, fingerprint, command, order_id, version, status)
			VALUES ($1, $2, $3, $4, $5, $6, $7)`,
		args: []any{k.Scope, k.Key, k.Fingerprint, rc.Command, rc.OrderID, rc.Version, string(rc.Status)},
		errOf: func(err error) error {
			var pgErr *pgconn.PgError
			if errors.As(err, &pgErr) && pgErr.Code == "23505" && pgErr.ConstraintName == "idempotency_keys_pkey" {
				return fmt.Errorf("key %q: %w", k.Key, command.ErrKeyTaken)
			}
			return err
		},
	})
}

// FindKey returns the idempotency key stored under scope and key and the
// receipt of its command; found is false when there is none (never used,
// or purged after the retention).
func (r *Repository) FindKey(ctx context.Context, scope, key string) (command.Key, command.Receipt, bool, error) {
	k := command.Key{Scope: scope, Key: key}
	var rc command.Receipt
	err := r.pool.QueryRow(ctx, `SELECT fingerprint, command, order_id, version, status FROM idempotency_keys
		WHERE scope = $1 AND key = $2`, scope, key).Scan(&k.Fingerprint, &rc.Command, &rc.OrderID, &rc.Version, &rc.Status)
	if errors.Is(err, pgx.ErrNoRows) {
		return k, rc, false, nil
	}
	if err != nil {
		return k, rc, false, fmt.Errorf("look up idempotency key %q: %w", key, err)
	}
	return k, rc, true, nil
}

// PurgeKeys deletes the idempotency keys stored before now minus
// retention and returns how many it deleted.
func (r *Repository) PurgeKeys(ctx context.Context, retention time.Duration) (int64, error) {
	tag, err := r.pool.Exec(ctx, `DELETE FROM idempotency_keys WHERE created_at < now() - make_interval(secs => $1)`, retention.Seconds())
	if err != nil {
		return 0, fmt.Errorf("purge idempotency keys older than %s: %w", retention, err)
	}
	return tag.RowsAffected(), nil
}
