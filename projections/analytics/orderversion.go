package analytics

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
)

// OrderVersion returns the highest aggregate_version of order id that the
// serving generation (or q's generation after OnGeneration) has applied, 0
// when it holds no event of the order. It reads the generation's
// order_status table by its primary key (order_id, version), so it costs a
// few milliseconds whatever the size of the read model; the sink inserts
// order_status last of its three tables, so a version seen here has its
// lines and order row in place. Read-your-writes waits poll it. It fails
// with ErrNoGeneration when no generation serves.
func (q *Queries) OrderVersion(ctx context.Context, id string) (uint64, error) {
	gen := q.gen
	if gen == 0 {
		var err error
		if gen, err = q.serving(ctx); err != nil {
			return 0, err
		}
	}
	var v uint64
	table := "`" + q.db + "`.`" + tableName("order_status", gen) + "`"
	if err := q.conn.QueryRow(ctx, "SELECT max(version) FROM "+table+" WHERE order_id = ?", id).Scan(&v); err != nil {
		return 0, fmt.Errorf("version of order %s in %s: %w", id, table, err)
	}
	return v, nil
}

// serving returns the number of the serving generation (as
// Store.Serving, on q's connection).
func (q *Queries) serving(ctx context.Context) (uint32, error) {
	var gen uint32
	err := q.conn.QueryRow(ctx, `SELECT generation FROM (
			SELECT generation, argMax(state, version) AS gen_state FROM `+"`"+q.db+"`.read_model_generations"+`
			WHERE read_model = ? GROUP BY generation
		) AS gens WHERE gen_state = ? ORDER BY generation DESC LIMIT 1`, Projection, StateServing).Scan(&gen)
	if errors.Is(err, sql.ErrNoRows) || (err == nil && gen == 0) {
		return 0, fmt.Errorf("serving generation of %s: %w", q.db, ErrNoGeneration)
	}
	if err != nil {
		return 0, fmt.Errorf("serving generation of %s: %w", q.db, err)
	}
	return gen, nil
}
