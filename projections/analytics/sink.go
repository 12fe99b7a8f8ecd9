package analytics

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/orderstream/orderstream/consumers"
	"github.com/orderstream/orderstream/internal/parallel"
	"github.com/orderstream/orderstream/internal/tracing"
)

// Sink projects order events into the ClickHouse read model; it implements
// consumers.Sink. Every Write turns its records into rows and inserts them
// with one batch per table per target generation (never one insert per
// event). Writing the same records again changes no answer: every table is a
// ReplacingMergeTree keyed by the order (and line), every reader
// deduplicates with FINAL.
//
// Write (or a prepared Write) is called from one goroutine at a time, and
// Prepare may run beside it (the runtime's contract, consumers.Preparer);
// Close may be called from any goroutine, more than once.
type Sink struct {
	cfg   Config
	conn  driver.Conn
	store *Store
	log   *slog.Logger
	now   func() time.Time

	mu        sync.Mutex
	ready     bool      // migrations applied by this process
	targets   []uint32  // generations to write to (cfg.Generation == 0)
	targetsAt time.Time // when targets was read
	closeOnce sync.Once
	closeErr  error
}

// SinkOption configures a Sink.
type SinkOption func(*Sink)

// WithLogger sets the logger; default slog.Default().
func WithLogger(l *slog.Logger) SinkOption { return func(s *Sink) { s.log = l } }

// NewSink returns a Sink for cfg. It opens a connection pool but does not
// dial: the first Write applies the migrations (Store.Migrate) and, while the
// server is unreachable, fails with a transient error the runtime retries.
// For an explicit cfg.Generation, Write fails until that generation exists.
func NewSink(cfg Config, opts ...SinkOption) (*Sink, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("analytics sink: %w", err)
	}
	conn, err := Open(cfg)
	if err != nil {
		return nil, err
	}
	return newSink(cfg, conn, opts...)
}

// newSink returns a Sink for cfg (defaults applied, valid) over conn, which
// it closes on Close.
func newSink(cfg Config, conn driver.Conn, opts ...SinkOption) (*Sink, error) {
	s := &Sink{cfg: cfg, conn: conn, log: slog.Default(), now: time.Now}
	for _, o := range opts {
		o(s)
	}
	var err error
	if s.store, err = NewStore(conn, cfg.Database, WithStoreLogger(s.log), WithCluster(cfg.Cluster)); err != nil {
		_ = conn.Close()
		return nil, err
	}
	return s, nil
}

// Store returns the Store of the sink's database (sharing its connection).
func (s *Sink) Store() *Store { return s.store }

// Write projects batch. It returns nil when every row is durable in every
// target generation; a *consumers.RejectedError listing the records that can
// never be projected (see Rows.Add), the others being durable; or a
// transient error (server unreachable, insert failed) after which the whole
// batch may be written again. ctx cancellation aborts the inserts not yet
// sent and returns the context's error; rows already sent are written again
// harmlessly on redelivery. Write is Prepare(batch).Write(ctx).
func (s *Sink) Write(ctx context.Context, batch []consumers.Record) error {
	return s.Prepare(batch).Write(ctx)
}

// Prepare decodes the payloads of batch and builds its rows (the CPU work of
// Write, on GOMAXPROCS goroutines for large batches) without touching the
// server; the runtime runs it while the previous batch is inserted. The
// result's Write inserts the rows, with Write's contract.
func (s *Sink) Prepare(batch []consumers.Record) consumers.Prepared {
	rows, rejected := buildRows(batch, s.cfg.Currency)
	return &preparedRows{s: s, n: len(batch), rows: rows, rejected: rejected}
}

// preparedRows is a batch's rows, ready to insert.
type preparedRows struct {
	s        *Sink
	n        int // records of the batch
	rows     Rows
	rejected map[int]error
}

// Rejected returns the records the write will reject (they are known once
// the rows are built), so that the runtime parks the later events of their
// orders before the write (consumers.Screener).
func (p *preparedRows) Rejected() map[int]error { return p.rejected }

func (p *preparedRows) Write(ctx context.Context) error {
	s := p.s
	if p.rows.Len() > 0 {
		if err := s.ensureReady(ctx); err != nil {
			return err
		}
		gens, err := s.writeTargets(ctx)
		if err != nil {
			return err
		}
		for _, g := range gens {
			err := tracing.Run(ctx, "clickhouse insert", func(ctx context.Context) error { return s.insert(ctx, g, &p.rows) },
				tracing.KeyProjection.String(Projection), tracing.KeyGeneration.Int64(int64(g)), tracing.KeyRows.Int(p.rows.Len()))
			if err != nil {
				s.invalidateTargets()
				return fmt.Errorf("analytics write of %d record(s) to generation %d: %w", p.n, g, err)
			}
		}
	}
	if len(p.rejected) > 0 {
		return &consumers.RejectedError{Rejected: p.rejected}
	}
	return nil
}

// parallelMin is the batch size from which rows are built on several cores.
const parallelMin = 512

// buildRows turns batch into rows (in batch order) and the rejected records
// by index. Payload decoding dominates the sink's CPU time, so large batches
// are split in contiguous chunks decoded on GOMAXPROCS goroutines.
func buildRows(batch []consumers.Record, currency string) (Rows, map[int]error) {
	type part struct {
		lo      int
		rows    Rows
		rejects map[int]error
	}
	var mu sync.Mutex
	var parts []part
	parallel.Chunks(len(batch), parallelMin, func(lo, hi int) {
		p := part{lo: lo, rejects: map[int]error{}}
		for i := lo; i < hi; i++ {
			if err := p.rows.Add(batch[i].Event, currency); err != nil {
				p.rejects[i] = err
			}
		}
		mu.Lock()
		parts = append(parts, p)
		mu.Unlock()
	})
	if len(parts) == 1 {
		return parts[0].rows, parts[0].rejects
	}
	slices.SortFunc(parts, func(a, b part) int { return a.lo - b.lo })
	var rows Rows
	rejected := map[int]error{}
	for _, p := range parts {
		rows.Lines = append(rows.Lines, p.rows.Lines...)
		rows.Orders = append(rows.Orders, p.rows.Orders...)
		rows.Statuses = append(rows.Statuses, p.rows.Statuses...)
		maps.Copy(rejected, p.rejects)
	}
	return rows, rejected
}

func (s *Sink) ensureReady(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ready {
		return nil
	}
	if err := s.store.Migrate(ctx); err != nil {
		return fmt.Errorf("analytics schema: %w", err)
	}
	s.ready = true
	return nil
}

func (s *Sink) invalidateTargets() {
	s.mu.Lock()
	s.targetsAt = time.Time{}
	s.mu.Unlock()
}

func (s *Sink) writeTargets(ctx context.Context) ([]uint32, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cfg.Generation != 0 {
		if s.targets == nil {
			g, err := s.store.generation(ctx, s.cfg.Generation)
			if err != nil {
				return nil, err
			}
			if g.State == StateDropped {
				return nil, fmt.Errorf("generation %d is dropped", g.Number)
			}
			s.targets = []uint32{g.Number}
		}
		return s.targets, nil
	}
	if s.targets != nil && s.now().Sub(s.targetsAt) < s.cfg.GenerationRefresh {
		return s.targets, nil
	}
	gens, err := s.store.writeTargets(ctx)
	if err != nil {
		return nil, err
	}
	if !equalGens(gens, s.targets) {
		s.log.Info("writing to generations", "projection", Projection, "generations", gens)
	}
	s.targets, s.targetsAt = gens, s.now()
	return gens, nil
}

func equalGens(a, b []uint32) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// insert writes rows into generation g: one batch per table, appended
// column by column (no per-row boxing of the values), in the order lines,
// orders, then the recomputation of the top-products rollup of the months
// of the lines (rollupInsert), then statuses: a reader that sees an order's
// version (OrderVersion reads order_status) finds every figure of it.
func (s *Sink) insert(ctx context.Context, g uint32, rows *Rows) error {
	for _, t := range rows.tables() {
		if t.n == 0 {
			continue
		}
		if t.base == "order_status" && len(rows.Lines) > 0 {
			if err := s.recomputeRollup(ctx, g, rows.Lines); err != nil {
				return err
			}
		}
		if err := s.batch(ctx, tableName(t.base, g), t.columns, t.n, t.values); err != nil {
			return err
		}
	}
	return nil
}

// recomputeRollup recomputes generation g's top-products rollup for every
// month of lines, from the generation's deduplicated lines (one INSERT ...
// SELECT; see migration generation/0002 for why it is exact whoever runs
// it and in whatever order).
func (s *Sink) recomputeRollup(ctx context.Context, g uint32, lines []LineRow) error {
	rollup := tableName("product_months", g)
	st := rollupInsert(s.store.table(tableName("order_lines", g)), s.store.table(rollup), monthsCondition(linesMonths(lines)))
	if err := s.conn.Exec(ctx, st); err != nil {
		return fmt.Errorf("recompute %s: %w", rollup, err)
	}
	return nil
}

func (s *Sink) batch(ctx context.Context, table, columns string, n int, values []any) error {
	b, err := s.conn.PrepareBatch(ctx, "INSERT INTO "+s.store.table(table)+" "+columns)
	if err != nil {
		return fmt.Errorf("prepare insert into %s: %w", table, err)
	}
	for i, v := range values {
		if err := b.Column(i).Append(v); err != nil {
			_ = b.Abort()
			return fmt.Errorf("insert into %s, column %d: %w", table, i, err)
		}
	}
	if err := b.Send(); err != nil {
		return fmt.Errorf("insert %d row(s) into %s: %w", n, table, err)
	}
	return nil
}

// Close releases the connection pool. It is idempotent.
func (s *Sink) Close() error {
	s.closeOnce.Do(func() {
		if err := s.conn.Close(); err != nil && !errors.Is(err, context.Canceled) {
			s.closeErr = fmt.Errorf("close clickhouse: %w", err)
		}
	})
	return s.closeErr
}
