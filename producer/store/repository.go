package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/orderstream/orderstream/producer/order"
	"github.com/orderstream/orderstream/schemas"
	"github.com/shopspring/decimal"
)

// Errors returned by Repository.
var (
	// ErrConflict: another writer changed the order since it was loaded
	// (its version moved on). Reload and retry the command.
	ErrConflict = errors.New("concurrent update: order version changed since it was loaded")
	// ErrDuplicateNumber: an order with this order number already exists
	// (the natural key; re-running an import hits it and adds nothing).
	ErrDuplicateNumber = errors.New("order number already exists")
	// ErrNotFound: no order with that id.
	ErrNotFound = errors.New("order not found")
)

// Repository loads and saves orders in PostgreSQL. It is safe for concurrent
// use; concurrency control is optimistic (see Save).
type Repository struct {
	pool         *pgxpool.Pool
	validator    *schemas.Validator
	eventVersion int
	upcasters    *schemas.Upcasters
}

// Option sets an optional setting of a Repository.
type Option func(*Repository)

// WithEventVersion makes the repository write its events as schema version
// v (schemas.OldestVersion to schemas.CurrentVersion; default
// schemas.CurrentVersion), for a rolling upgrade: consumers first, then
// writers. Events the older version cannot carry (an order.placed with a
// channel, for v1) are refused by Save, wrapping schemas.ErrOutOfRange. A v
// outside the range makes every Save fail.
func WithEventVersion(v int) Option { return func(r *Repository) { r.eventVersion = v } }

// NewRepository returns a repository on pool; every event is validated by v
// before it is written.
func NewRepository(pool *pgxpool.Pool, v *schemas.Validator, opts ...Option) *Repository {
	r := &Repository{pool: pool, validator: v, eventVersion: schemas.CurrentVersion, upcasters: schemas.NewUpcasters()}
	for _, o := range opts {
		o(r)
	}
	return r
}

// Load returns the order with id, or ErrNotFound. The order and its lines
// are read in one round trip (a pipelined batch of two queries, one
// snapshot: a batch runs as one implicit transaction).
func (r *Repository) Load(ctx context.Context, id string) (*order.Order, error) {
	var s order.State
	var customer *string
	var total decimal.Decimal
	b := &pgx.Batch{}
	b.Queue(`SELECT order_id, order_number, kind, status, customer_id, country, currency,
		total, paid, refunded, placed_at, version FROM orders WHERE order_id = $1`, id)
	b.Queue(`SELECT line_no, coalesce(source_line, 0), stock_code, description, quantity, unit_price, invoiced_at
		FROM order_lines WHERE order_id = $1 ORDER BY line_no`, id)
	br := r.pool.SendBatch(ctx, b)
	defer br.Close()
	err := br.QueryRow().
		Scan(&s.ID, &s.Number, &s.Kind, &s.Status, &customer, &s.Country, &s.Currency, &total, &s.Paid, &s.Refunded, &s.PlacedAt, &s.Version)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("load order %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("load order %s: %w", id, err)
	}
	if customer != nil {
		s.CustomerID = *customer
	}
	s.Total = schemas.Money{Amount: total, Currency: s.Currency}
	rows, err := br.Query()
	if err != nil {
		return nil, fmt.Errorf("load lines of order %s: %w", id, err)
	}
	s.Lines, err = pgx.CollectRows(rows, func(row pgx.CollectableRow) (schemas.Line, error) {
		var l schemas.Line
		l.UnitPrice.Currency = s.Currency
		err := row.Scan(&l.LineNo, &l.SourceLine, &l.StockCode, &l.Description, &l.Quantity, &l.UnitPrice.Amount, &l.InvoicedAt)
		return l, err
	})
	if err != nil {
		return nil, fmt.Errorf("load lines of order %s: %w", id, err)
	}
	if err := br.Close(); err != nil {
		return nil, fmt.Errorf("load order %s: %w", id, err)
	}
	return order.Rehydrate(s), nil
}

// IDByNumber returns the id of the order with number, or ErrNotFound.
func (r *Repository) IDByNumber(ctx context.Context, number string) (string, error) {
	var id string
	err := r.pool.QueryRow(ctx, `SELECT order_id FROM orders WHERE order_number = $1`, number).Scan(&id)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", fmt.Errorf("order number %s: %w", number, ErrNotFound)
	}
	if err != nil {
		return "", fmt.Errorf("look up order number %s: %w", number, err)
	}
	return id, nil
}

// Save writes the order's pending changes: its new state and one outbox row
// per event, in one transaction. It writes only if the stored version still
// equals o.PersistedVersion(); otherwise it returns ErrConflict (or
// ErrDuplicateNumber for a new order whose number exists) and writes nothing.
// On success the pending changes are cleared.
func (r *Repository) Save(ctx context.Context, o *order.Order, md schemas.Metadata) error {
	return r.save(ctx, o, md, nil)
}

// lastStatement is a statement that runs last in a save's transaction
// (SaveKeyed: the idempotency key's INSERT), pipelined with the others;
// errOf maps its error.
type lastStatement struct {
	sql   string
	args  []any
	errOf func(error) error
}

// save is Save; also, when non-nil, runs in the same transaction after the
// order's rows are written (SaveKeyed stores the idempotency key).
func (r *Repository) save(ctx context.Context, o *order.Order, md schemas.Metadata, also *lastStatement) error {
	changes := o.Changes()
	if len(changes) == 0 {
		return nil
	}
	s := o.State()
	rows := make([][]byte, len(changes))
	envs := make([]schemas.Envelope, len(changes))
	for i, c := range changes {
		env, err := schemas.NewEnvelope(s.ID, c.Version, c.OccurredAt, c.Payload, md)
		if err != nil {
			return err
		}
		if env, err = r.upcasters.Downcast(env, r.eventVersion); err != nil {
			return err
		}
		if rows[i], err = r.validator.Marshal(env); err != nil {
			return err
		}
		envs[i] = env
	}
	var err error
	if o.PersistedVersion() == 0 {
		err = r.create(ctx, s, envs, rows, also) // one statement, one round trip
	} else {
		err = r.update(ctx, o.PersistedVersion(), s, envs, rows, also)
	}
	if err != nil {
		return fmt.Errorf("save order %s (%s) at version %d: %w", s.ID, s.Number, s.Version, err)
	}
	o.ClearChanges()
	return nil
}

// update writes an existing order's new state and its events in one
// transaction, with also (when non-nil) at its end, in two round trips
// (see pipeline): BEGIN, the state's UPDATE, the outbox INSERTs and also,
// then COMMIT. A version conflict (the UPDATE matched no row) rolls it all
// back.
func (r *Repository) update(ctx context.Context, persisted int64, s order.State, envs []schemas.Envelope, rows [][]byte, also *lastStatement) error {
	batch := &pgx.Batch{}
	queueState(batch, persisted, s)
	for i, env := range envs {
		batch.Queue(`INSERT INTO outbox (event_id, aggregate_type, aggregate_id, aggregate_version, event_type,
			schema_version, occurred_at, recorded_at, traceparent, envelope)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, nullif($9, ''), $10)`,
			env.EventID, env.AggregateType, env.AggregateID, env.AggregateVersion, env.EventType,
			env.SchemaVersion, env.OccurredAt, env.RecordedAt, env.Traceparent, string(rows[i]))
	}
	if also != nil {
		batch.Queue(also.sql, also.args...)
	}
	return r.pipeline(ctx, batch, func(br pgx.BatchResults, _ *pgxpool.Conn) error {
		tag, err := br.Exec()
		if err == nil && tag.RowsAffected() == 0 {
			return ErrConflict
		}
		if err != nil {
			return classify(err)
		}
		for range envs {
			if _, err := br.Exec(); err != nil {
				return classify(err)
			}
		}
		if also != nil {
			if _, err := br.Exec(); err != nil {
				return also.errOf(err)
			}
		}
		return nil
	})
}

// pipeline runs batch as one transaction in two round trips: BEGIN and
// the batch's statements pipelined, then COMMIT once read (its results, in
// order; it may run more statements on conn) returned nil; ROLLBACK
// otherwise, and read's error is returned. pgx.BeginFunc would spend a
// round trip on BEGIN alone. A connection left inside a transaction (its
// ROLLBACK failed) is not reused: pgxpool destroys it on release.
func (r *Repository) pipeline(ctx context.Context, batch *pgx.Batch, read func(pgx.BatchResults, *pgxpool.Conn) error) error {
	conn, err := r.pool.Acquire(ctx)
	if err != nil {
		return err
	}
	defer conn.Release()
	full := &pgx.Batch{QueuedQueries: append([]*pgx.QueuedQuery{{SQL: "BEGIN"}}, batch.QueuedQueries...)}
	br := conn.SendBatch(ctx, full)
	_, err = br.Exec()
	if err == nil {
		err = read(br, conn)
	}
	if cerr := br.Close(); err == nil && cerr != nil {
		err = classify(cerr)
	}
	if err == nil {
		tag, cerr := conn.Exec(ctx, "COMMIT")
		switch {
		case cerr != nil:
			return cerr
		case tag.String() != "COMMIT":
			return pgx.ErrTxCommitRollback // the transaction had failed: COMMIT answered ROLLBACK
		}
		return nil
	}
	if conn.Conn().PgConn().TxStatus() != 'I' {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		_, _ = conn.Exec(rctx, "ROLLBACK")
	}
	return err
}

// WrittenBy reports whether the outbox holds an event of order id whose
// correlation_id is correlationID. After a Save whose outcome is unknown
// (the connection dropped at COMMIT) is retried and finds the order present,
// it tells the writer's own commit from an earlier one. It answers false
// once the relay's purge deleted the events (--outbox-retention).
func (r *Repository) WrittenBy(ctx context.Context, id, correlationID string) (bool, error) {
	var ok bool
	err := r.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM outbox WHERE aggregate_id = $1 AND envelope->>'correlation_id' = $2)`,
		id, correlationID).Scan(&ok)
	if err != nil {
		return false, fmt.Errorf("outbox events of order %s: %w", id, err)
	}
	return ok, nil
}

// queueState queues the UPDATE that moves a stored order from version
// persisted to s; it affects no row when the version moved on (a
// conflict).
func queueState(b *pgx.Batch, persisted int64, s order.State) {
	b.Queue(`UPDATE orders SET status = $2, paid = $3, refunded = $4, version = $5, updated_at = now()
		WHERE order_id = $1 AND version = $6`, s.ID, s.Status, numeric(s.Paid), numeric(s.Refunded), s.Version, persisted)
}

// numeric converts d to pgx's numeric type exactly (coefficient and
// exponent), which encodes in binary without the text round trip a
// driver.Valuer would take — it matters at half a million lines per import.
func numeric(d decimal.Decimal) pgtype.Numeric {
	return pgtype.Numeric{Int: d.Coefficient(), Exp: d.Exponent(), Valid: true}
}

// classify maps a unique violation on the outbox's (aggregate_id,
// aggregate_version) to ErrConflict.
func classify(err error) error {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "23505" {
		if pgErr.ConstraintName == "orders_order_number_key" {
			return ErrDuplicateNumber
		}
		return fmt.Errorf("%w (%s)", ErrConflict, pgErr.ConstraintName)
	}
	return err
}
