package rebuild

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/orderstream/orderstream/consumers"
	"github.com/orderstream/orderstream/projections/analytics"
)

// Analytics adapts the ClickHouse read model (projections/analytics) to
// Projection. Its generations are those of the registry, dropped ones
// left out.
type Analytics struct {
	cfg   analytics.Config
	conn  driver.Conn
	store *analytics.Store
	log   *slog.Logger
}

// NewAnalytics opens a connection pool to cfg's server (without dialling).
func NewAnalytics(cfg analytics.Config, log *slog.Logger) (*Analytics, error) {
	if log == nil {
		log = slog.Default()
	}
	if cfg.Database == "" {
		cfg.Database = analytics.DefaultDatabase
	}
	conn, err := analytics.Open(cfg)
	if err != nil {
		return nil, err
	}
	st, err := analytics.NewStore(conn, cfg.Database, analytics.WithStoreLogger(log))
	if err != nil {
		_ = conn.Close()
		return nil, err
	}
	return &Analytics{cfg: cfg, conn: conn, store: st, log: log}, nil
}

// Name implements Projection.
func (a *Analytics) Name() string { return analytics.Projection }

// Store returns the read model's Store.
func (a *Analytics) Store() *analytics.Store { return a.store }

// Queries returns dashboard queries over the serving views.
func (a *Analytics) Queries() *analytics.Queries { return analytics.New(a.conn, a.cfg.Database) }

// Generations implements Projection.
func (a *Analytics) Generations(ctx context.Context) ([]Generation, error) {
	gens, err := a.store.Generations(ctx)
	if err != nil {
		return nil, err
	}
	var out []Generation
	for _, g := range gens {
		switch g.State {
		case analytics.StateBuilding:
			out = append(out, Generation{Number: g.Number, State: StateBuilding})
		case analytics.StateServing:
			out = append(out, Generation{Number: g.Number, State: StateServing})
		case analytics.StateRetired:
			out = append(out, Generation{Number: g.Number, State: StateRetired})
		}
	}
	return out, nil
}

// NextGeneration implements Projection (numbers of dropped generations are
// never reused).
func (a *Analytics) NextGeneration(ctx context.Context) (uint32, error) {
	return a.store.NextGeneration(ctx)
}

// CreateGeneration implements Projection. It migrates the schema first, so
// that a rebuild works on a database no daemon has written yet.
func (a *Analytics) CreateGeneration(ctx context.Context, n uint32) error {
	if err := a.store.Migrate(ctx); err != nil {
		return err
	}
	return a.store.CreateGeneration(ctx, n)
}

// Sink implements Projection.
func (a *Analytics) Sink(_ context.Context, n uint32) (consumers.Sink, func() error, error) {
	cfg := a.cfg
	cfg.Generation = n
	s, err := analytics.NewSink(cfg, analytics.WithLogger(a.log))
	if err != nil {
		return nil, nil, err
	}
	return s, s.Close, nil
}

// Cutover implements Projection: the registry, then every stable view, in
// the form the server's release keeps atomic (analytics.Store.CutoverScope).
func (a *Analytics) Cutover(ctx context.Context, n uint32) error { return a.store.Cutover(ctx, n) }

// Rollback implements Projection.
func (a *Analytics) Rollback(ctx context.Context) (uint32, error) { return a.store.Rollback(ctx) }

// DropGeneration implements Projection.
func (a *Analytics) DropGeneration(ctx context.Context, n uint32) error {
	return a.store.DropGeneration(ctx, n)
}

// analyticsTables are the physical tables of a generation, <base>_g<n>, as
// documented by projections/analytics.
var analyticsTables = []string{"order_lines", "orders", "order_status"}

// Clear implements Projection: TRUNCATE TABLE of the generation's three
// tables (order_lines_g<n>, orders_g<n>, order_status_g<n>).
func (a *Analytics) Clear(ctx context.Context, n uint32) error {
	for _, base := range analyticsTables {
		t := "`" + a.cfg.Database + "`.`" + base + "_g" + strconv.FormatUint(uint64(n), 10) + "`"
		if err := a.conn.Exec(ctx, "TRUNCATE TABLE "+t); err != nil {
			return fmt.Errorf("clear analytics generation %d: truncate %s: %w", n, t, err)
		}
	}
	return nil
}

// Close implements Projection.
func (a *Analytics) Close() error { return a.conn.Close() }
