package analytics

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/orderstream/orderstream/consumers"
	"github.com/orderstream/orderstream/projections"
	"github.com/shopspring/decimal"
)

// ReadModel is the ClickHouse read model as a projections.ReadModel: its
// registry's generations (dropped ones left out), a Sink bound to one of
// them, and what the rebuild and the verifier read of a generation. It
// holds one connection pool (Close releases it) and is safe for concurrent
// use.
type ReadModel struct {
	cfg   Config
	conn  driver.Conn
	store *Store
	log   *slog.Logger
}

var _ projections.ReadModel = (*ReadModel)(nil)

// OpenReadModel returns the read model of cfg's server and database
// (cfg.Generation is ignored: Sink chooses). It opens a connection pool
// without dialling. Options: WithLogger (default slog.Default()).
func OpenReadModel(cfg Config, opts ...SinkOption) (*ReadModel, error) {
	cfg.setDefaults()
	cfg.Generation = 0
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("analytics read model: %w", err)
	}
	s := &Sink{} // only to read the options
	for _, o := range opts {
		o(s)
	}
	if s.log == nil {
		s.log = slog.Default()
	}
	conn, err := Open(cfg)
	if err != nil {
		return nil, err
	}
	st, err := NewStore(conn, cfg.Database, WithStoreLogger(s.log), WithCluster(cfg.Cluster))
	if err != nil {
		return nil, errors.Join(err, conn.Close())
	}
	return &ReadModel{cfg: cfg, conn: conn, store: st, log: s.log}, nil
}

// Name implements projections.ReadModel: Projection ("analytics").
func (m *ReadModel) Name() string { return Projection }

// Store returns the read model's Store (sharing its connection).
func (m *ReadModel) Store() *Store { return m.store }

// Queries returns dashboard queries over the serving views.
func (m *ReadModel) Queries() *Queries { return New(m.conn, m.cfg.Database) }

// Setup implements projections.ReadModel: Store.Migrate.
func (m *ReadModel) Setup(ctx context.Context) error { return m.store.Migrate(ctx) }

// Generations implements projections.ReadModel: the registry's generations
// that are not dropped, each with the rows of its order_lines table (active
// parts, before merges: duplicates count until merged).
func (m *ReadModel) Generations(ctx context.Context) ([]projections.Generation, error) {
	gens, err := m.store.Generations(ctx)
	if err != nil {
		return nil, err
	}
	rows, err := m.lineRows(ctx)
	if err != nil {
		return nil, err
	}
	var out []projections.Generation
	for _, g := range gens {
		if g.State == StateDropped {
			continue
		}
		g.Rows = rows[tableName("order_lines", g.Number)] // no active part: empty
		out = append(out, g)
	}
	return out, nil
}

// lineRows returns the rows of every order_lines_g<N> table of the database
// (system.parts: active parts; an empty table has none and is absent).
func (m *ReadModel) lineRows(ctx context.Context) (map[string]int64, error) {
	out := map[string]int64{}
	q := "SELECT table, toInt64(sum(rows)) FROM system.parts WHERE database = ? AND active AND startsWith(table, 'order_lines_g') GROUP BY table"
	err := m.each(ctx, q, func(rows driver.Rows) error {
		var t string
		var n int64
		err := rows.Scan(&t, &n)
		out[t] = n
		return err
	}, m.cfg.Database)
	if err != nil {
		return nil, fmt.Errorf("rows of the generations of %s: %w", m.cfg.Database, err)
	}
	return out, nil
}

// NextGeneration implements projections.ReadModel (numbers of dropped
// generations are never reused).
func (m *ReadModel) NextGeneration(ctx context.Context) (uint32, error) {
	return m.store.NextGeneration(ctx)
}

// CreateGeneration implements projections.ReadModel: Migrate, then
// Store.CreateGeneration.
func (m *ReadModel) CreateGeneration(ctx context.Context, n uint32) error {
	if err := m.store.Migrate(ctx); err != nil {
		return err
	}
	return m.store.CreateGeneration(ctx, n)
}

// Sink implements projections.ReadModel: a Sink of its own connection
// writing generation n (0: every generation not dropped, as the daemons
// do). A Sink of a generation that does not exist fails its writes.
func (m *ReadModel) Sink(_ context.Context, n uint32) (consumers.Sink, func() error, error) {
	cfg := m.cfg
	cfg.Generation = n
	s, err := NewSink(cfg, WithLogger(m.log))
	if err != nil {
		return nil, nil, err
	}
	return s, s.Close, nil
}

// Cutover implements projections.ReadModel: Store.Cutover (the registry,
// then every stable view, in the form the server's release keeps atomic).
func (m *ReadModel) Cutover(ctx context.Context, n uint32) error { return m.store.Cutover(ctx, n) }

// Rollback implements projections.ReadModel: Store.Rollback.
func (m *ReadModel) Rollback(ctx context.Context) (uint32, error) { return m.store.Rollback(ctx) }

// DropGeneration implements projections.ReadModel: Store.DropGeneration.
func (m *ReadModel) DropGeneration(ctx context.Context, n uint32) error {
	return m.store.DropGeneration(ctx, n)
}

// Clear implements projections.ReadModel: TRUNCATE TABLE of each table of
// generation n (of their local tables on a cluster, clusterDDL) (order_lines_g<n>, orders_g<n>, order_status_g<n>,
// product_months_g<n>).
func (m *ReadModel) Clear(ctx context.Context, n uint32) error {
	for _, base := range generationTables {
		t := m.store.table(tableName(base, n))
		if err := m.store.ddl(ctx, "TRUNCATE TABLE "+t); err != nil {
			return fmt.Errorf("clear analytics generation %d: truncate %s: %w", n, t, err)
		}
	}
	return nil
}

// OrderVersions implements projections.ReadModel: max(version) per order
// of order_status_g<n> (one row per applied event), for the orders that
// have a row in orders_g<n> (their order.placed was applied).
func (m *ReadModel) OrderVersions(ctx context.Context, n uint32) (projections.Versions, error) {
	placed := map[string]bool{}
	err := m.each(ctx, "SELECT DISTINCT order_id FROM "+m.store.table(tableName("orders", n)), func(rows driver.Rows) error {
		var id string
		err := rows.Scan(&id)
		placed[id] = true
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("analytics generation %d: read orders: %w", n, err)
	}
	vs := projections.Versions{}
	err = m.each(ctx, "SELECT order_id, max(version) FROM "+m.store.table(tableName("order_status", n))+" GROUP BY order_id", func(rows driver.Rows) error {
		var id string
		var v uint64
		err := rows.Scan(&id, &v)
		if placed[id] {
			vs[id] = int64(v)
		}
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("analytics generation %d: read order versions: %w", n, err)
	}
	return vs, nil
}

// OrderFacts implements projections.ReadModel: every order of generation n
// placed (orders_g<n>) with the version of its last event, its status (the
// view order_status's fold), its total in thousandths and its line_count,
// read through the view orders' definition on generation n (FINAL: exact
// before merges).
func (m *ReadModel) OrderFacts(ctx context.Context, n uint32) (map[string]projections.Facts, error) {
	fs := map[string]projections.Facts{}
	q := "SELECT order_id, toString(status), toString(total), toInt64(line_count), toInt64(version) FROM (" + m.store.OrdersSQL(n) + ") AS verified"
	err := m.each(ctx, q, func(rows driver.Rows) error {
		var id, total string
		var f projections.Facts
		if err := rows.Scan(&id, &f.Status, &total, &f.Lines, &f.Version); err != nil {
			return err
		}
		d, err := decimal.NewFromString(total)
		if err != nil {
			return fmt.Errorf("order %s: total %q: %w", id, total, err)
		}
		f.TotalMilli = d.Shift(3).IntPart() // Decimal(18,3): exact
		fs[id] = f
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("analytics generation %d: read order facts: %w", n, err)
	}
	return fs, nil
}

// each runs query and calls scan for every row, stopping at its first error.
func (m *ReadModel) each(ctx context.Context, query string, scan func(driver.Rows) error, args ...any) error {
	rows, err := m.conn.Query(ctx, query, args...)
	if err != nil {
		return err
	}
	for rows.Next() {
		if err := scan(rows); err != nil {
			return errors.Join(err, rows.Close())
		}
	}
	return errors.Join(rows.Err(), rows.Close())
}

// Close implements projections.ReadModel: closes the connection pool.
func (m *ReadModel) Close() error { return m.conn.Close() }
