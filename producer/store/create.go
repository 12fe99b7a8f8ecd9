package store

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/orderstream/orderstream/producer/order"
	"github.com/orderstream/orderstream/schemas"
)

// createSQL writes a new order, its lines and its outbox events in one
// statement: PostgreSQL runs it as one transaction, and the client pays one
// round trip (BEGIN, INSERT, COPY, INSERT…, COMMIT took six). The lines and
// events are inserted only when the order row was (its CTE returns the id),
// so an order already present writes nothing and returns 0. The foreign key
// of order_lines is checked at the end of the statement, after the order row.
const createSQL = `WITH o AS (
	INSERT INTO orders (order_id, order_number, kind, status, customer_id, country, currency, total, paid, refunded, placed_at, version)
	VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
	ON CONFLICT DO NOTHING
	RETURNING order_id
), l AS (
	INSERT INTO order_lines (order_id, line_no, source_line, stock_code, description, quantity, unit_price, invoiced_at)
	SELECT o.order_id, u.n, nullif(u.s, 0), u.c, u.d, u.q, u.p, u.t
	FROM o, unnest($13::int[], $14::int[], $15::text[], $16::text[], $17::bigint[], $18::numeric[], $19::timestamptz[]) AS u(n, s, c, d, q, p, t)
), e AS (
	INSERT INTO outbox (event_id, aggregate_type, aggregate_id, aggregate_version, event_type, schema_version, occurred_at, recorded_at, traceparent, envelope)
	SELECT u.id, u.at, o.order_id, u.v, u.et, u.sv, u.oc, u.rc, nullif(u.tp, ''), u.env::json
	FROM o, unnest($20::uuid[], $21::text[], $22::bigint[], $23::text[], $24::int[], $25::timestamptz[], $26::timestamptz[], $27::text[], $28::text[])
		AS u(id, at, v, et, sv, oc, rc, tp, env)
)
SELECT count(*) FROM o`

// querier is what create needs of a pool or a transaction.
type querier interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// create writes new order s (persisted version 0) with its events envs,
// serialized as rows, in one statement (createSQL). With also, that
// statement and also run in one transaction, in two round trips (see
// pipeline; the idempotency key of SaveKeyed lands with the order or not
// at all). It returns ErrConflict when an order with the same id exists,
// ErrDuplicateNumber when one with the same number does, and classify's
// mapping of a unique violation of the outbox.
func (r *Repository) create(ctx context.Context, s order.State, envs []schemas.Envelope, rows [][]byte, also *lastStatement) error {
	if also == nil {
		return createIn(ctx, r.pool, s, envs, rows)
	}
	batch := &pgx.Batch{}
	batch.Queue(createSQL, createArgs(s, envs, rows)...)
	batch.Queue(also.sql, also.args...)
	return r.pipeline(ctx, batch, func(br pgx.BatchResults, conn *pgxpool.Conn) error {
		var written int
		if err := br.QueryRow().Scan(&written); err != nil {
			return classify(err)
		}
		if written != 1 {
			// The connection is busy until the batch is read to its end;
			// the key's INSERT ran too (it is rolled back with the rest).
			if err := br.Close(); err != nil {
				return also.errOf(err)
			}
			return notCreated(ctx, conn, s.ID)
		}
		if _, err := br.Exec(); err != nil {
			return also.errOf(err)
		}
		return nil
	})
}

// createIn is create on q.
func createIn(ctx context.Context, q querier, s order.State, envs []schemas.Envelope, rows [][]byte) error {
	var written int
	if err := q.QueryRow(ctx, createSQL, createArgs(s, envs, rows)...).Scan(&written); err != nil {
		return classify(err)
	}
	if written == 1 {
		return nil
	}
	return notCreated(ctx, q, s.ID)
}

// notCreated tells why createSQL wrote nothing: ErrConflict when order id
// exists, else ErrDuplicateNumber (its number does).
func notCreated(ctx context.Context, q querier, id string) error {
	var sameID bool
	if err := q.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM orders WHERE order_id = $1)`, id).Scan(&sameID); err != nil {
		return err
	}
	if sameID {
		return ErrConflict
	}
	return ErrDuplicateNumber
}

// createArgs are createSQL's arguments for s, envs and rows.
func createArgs(s order.State, envs []schemas.Envelope, rows [][]byte) []any {
	var customer *string
	if s.CustomerID != "" {
		customer = &s.CustomerID
	}
	n := len(s.Lines)
	lineNo, source := make([]int32, n), make([]int32, n)
	stock, desc := make([]string, n), make([]string, n)
	qty, price, invoiced := make([]int64, n), make([]pgtype.Numeric, n), make([]time.Time, n)
	for i, l := range s.Lines {
		lineNo[i], source[i], stock[i], desc[i] = int32(l.LineNo), int32(l.SourceLine), l.StockCode, l.Description
		qty[i], price[i], invoiced[i] = l.Quantity, numeric(l.UnitPrice.Amount), l.InvoicedAt
	}
	m := len(envs)
	ids, aggType, version, eventType := make([]string, m), make([]string, m), make([]int64, m), make([]string, m)
	schemaVersion, occurred, recorded := make([]int32, m), make([]time.Time, m), make([]time.Time, m)
	trace := make([]string, m)
	for i, e := range envs {
		ids[i], aggType[i], version[i], eventType[i] = e.EventID.String(), e.AggregateType, e.AggregateVersion, e.EventType
		schemaVersion[i], occurred[i], recorded[i] = int32(e.SchemaVersion), e.OccurredAt, e.RecordedAt
		trace[i] = e.Traceparent
	}
	return []any{s.ID, s.Number, s.Kind, s.Status, customer, s.Country, s.Currency, numeric(s.Total.Amount), numeric(s.Paid),
		numeric(s.Refunded), s.PlacedAt, s.Version,
		lineNo, source, stock, desc, qty, price, invoiced,
		ids, aggType, version, eventType, schemaVersion, occurred, recorded, trace, rows}
}
