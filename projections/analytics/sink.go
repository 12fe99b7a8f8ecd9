package analytics

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"sync"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/orderstream/orderstream/consumers"
)

// Sink projects order events into the ClickHouse read model; it implements
// consumers.Sink. Every Write turns its records into rows and inserts them
// with one batch per table per target generation (never one insert per
// event). Writing the same records again changes no answer: every table is a
// ReplacingMergeTree keyed by the order (and line), every reader
// deduplicates with FINAL.
//
// Write is called from one goroutine at a time (the runtime's contract);
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
	s := &Sink{cfg: cfg, conn: conn, log: slog.Default(), now: time.Now}
	for _, o := range opts {
		o(s)
	}
	if s.store, err = NewStore(conn, cfg.Database, WithStoreLogger(s.log)); err != nil {
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
// harmlessly on redelivery.
func (s *Sink) Write(ctx context.Context, batch []consumers.Record) error {
	rows, rejected := buildRows(batch, s.cfg.Currency)
	if rows.Len() > 0 {
		if err := s.ensureReady(ctx); err != nil {
			return err
		}
		gens, err := s.writeTargets(ctx)
		if err != nil {
			return err
		}
		for _, g := range gens {
			if err := s.insert(ctx, g, &rows); err != nil {
				s.invalidateTargets()
				return fmt.Errorf("analytics write of %d record(s) to generation %d: %w", len(batch), g, err)
			}
		}
	}
	if len(rejected) > 0 {
		return &consumers.RejectedError{Rejected: rejected}
	}
	return nil
}

// parallelMin is the batch size from which rows are built on several cores.
const parallelMin = 512

// buildRows turns batch into rows (in batch order) and the rejected records
// by index. Payload decoding dominates the sink's CPU time, so large batches
// are split in contiguous chunks decoded on GOMAXPROCS goroutines.
func buildRows(batch []consumers.Record, currency string) (Rows, map[int]error) {
	workers := runtime.GOMAXPROCS(0)
	if len(batch) < parallelMin || workers < 2 {
		workers = 1
	}
	size := (len(batch) + workers - 1) / workers
	parts := make([]Rows, workers)
	rejects := make([]map[int]error, workers)
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		lo, hi := min(w*size, len(batch)), min((w+1)*size, len(batch))
		wg.Add(1)
		go func() {
			defer wg.Done()
			rejects[w] = map[int]error{}
			for i := lo; i < hi; i++ {
				if err := parts[w].Add(batch[i].Event, currency); err != nil {
					rejects[w][i] = err
				}
			}
		}()
	}
	wg.Wait()
	if workers == 1 {
		return parts[0], rejects[0]
	}
	var rows Rows
	rejected := map[int]error{}
	for w := range parts {
		rows.Lines = append(rows.Lines, parts[w].Lines...)
		rows.Orders = append(rows.Orders, parts[w].Orders...)
		rows.Statuses = append(rows.Statuses, parts[w].Statuses...)
		for i, err := range rejects[w] {
			rejected[i] = err
		}
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

// Column lists of the inserts (PrepareBatch needs them on 18.16).
const (
	lineColumns   = "(order_id, line_no, order_number, kind, customer_id, country, stock_code, description, quantity, unit_price, amount, placed_at, version)"
	orderColumns  = "(order_id, order_number, kind, customer_id, country, currency, total, line_count, placed_at, version)"
	statusColumns = "(order_id, status, event_type, amount, updated_at, version)"
)

// insert writes rows into generation g: one batch per table.
func (s *Sink) insert(ctx context.Context, g uint32, rows *Rows) error {
	if len(rows.Lines) > 0 {
		err := s.batch(ctx, tableName("order_lines", g), lineColumns, len(rows.Lines), func(b driver.Batch, i int) error {
			r := &rows.Lines[i]
			return b.Append(r.OrderID, r.LineNo, r.OrderNumber, string(r.Kind), r.CustomerID, r.Country, r.StockCode,
				r.Description, r.Quantity, r.UnitPrice, r.Amount, r.PlacedAt, r.Version)
		})
		if err != nil {
			return err
		}
	}
	if len(rows.Orders) > 0 {
		err := s.batch(ctx, tableName("orders", g), orderColumns, len(rows.Orders), func(b driver.Batch, i int) error {
			r := &rows.Orders[i]
			return b.Append(r.OrderID, r.OrderNumber, string(r.Kind), r.CustomerID, r.Country, r.Currency, r.Total,
				r.Lines, r.PlacedAt, r.Version)
		})
		if err != nil {
			return err
		}
	}
	if len(rows.Statuses) > 0 {
		err := s.batch(ctx, tableName("order_status", g), statusColumns, len(rows.Statuses), func(b driver.Batch, i int) error {
			r := &rows.Statuses[i]
			return b.Append(r.OrderID, string(r.Status), r.EventType, r.Amount, r.UpdatedAt, r.Version)
		})
		if err != nil {
			return err
		}
	}
	return nil
}

func (s *Sink) batch(ctx context.Context, table, columns string, n int, appendRow func(driver.Batch, int) error) error {
	b, err := s.conn.PrepareBatch(ctx, "INSERT INTO "+s.store.table(table)+" "+columns)
	if err != nil {
		return fmt.Errorf("prepare insert into %s: %w", table, err)
	}
	for i := 0; i < n; i++ {
		if err := appendRow(b, i); err != nil {
			_ = b.Abort()
			return fmt.Errorf("insert into %s, row %d: %w", table, i, err)
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
