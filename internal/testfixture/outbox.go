package testfixture

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/orderstream/orderstream/schemas"
)

// Execer is what InsertOutbox needs of a pgxpool.Pool, a pgx.Conn or a
// pgx.Tx.
type Execer interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
}

// insertOutboxSQL writes one outbox row per array element, with the columns
// producer/store writes (traceparent NULL when empty, as there).
const insertOutboxSQL = `INSERT INTO outbox (event_id, aggregate_type, aggregate_id, aggregate_version, event_type,
	schema_version, occurred_at, recorded_at, traceparent, envelope)
SELECT u.id, u.at, u.a, u.v, u.et, u.sv, u.oc, u.rc, nullif(u.tp, ''), u.env::json
FROM unnest($1::uuid[], $2::text[], $3::text[], $4::bigint[], $5::text[], $6::int[], $7::timestamptz[], $8::timestamptz[], $9::text[], $10::text[])
	WITH ORDINALITY AS u(id, at, a, v, et, sv, oc, rc, tp, env, n)
ORDER BY u.n`

// InsertOutbox writes events into the outbox table of db (migrated by
// producer/store) as the write side writes them: one row per event, its
// envelope column EnvelopeJSON(event) byte for byte, in slice order, in ONE
// statement (so one transaction, one commit LSN for all of them). It writes
// no orders or order_lines rows: enough for the relay, which reads the
// outbox only. Events of one order must come in version order, within and
// across calls. It fails naming the first event that does not validate,
// or with the database's error (a duplicate event id or order version
// violates the outbox's unique constraints).
func InsertOutbox(ctx context.Context, db Execer, events []schemas.Envelope) error {
	bodies, err := EnvelopesJSON(events)
	if err != nil {
		return fmt.Errorf("outbox rows: %w", err)
	}
	n := len(events)
	ids, aggType, aggID, eventType := make([]string, n), make([]string, n), make([]string, n), make([]string, n)
	version, schemaVersion := make([]int64, n), make([]int32, n)
	occurred, recorded := make([]time.Time, n), make([]time.Time, n)
	trace, body := make([]string, n), make([]string, n)
	for i, e := range events {
		ids[i], aggType[i], aggID[i], eventType[i] = e.EventID.String(), e.AggregateType, e.AggregateID, e.EventType
		version[i], schemaVersion[i] = e.AggregateVersion, int32(e.SchemaVersion)
		occurred[i], recorded[i] = e.OccurredAt, e.RecordedAt
		trace[i], body[i] = e.Traceparent, string(bodies[i])
	}
	if _, err := db.Exec(ctx, insertOutboxSQL, ids, aggType, aggID, version, eventType, schemaVersion, occurred, recorded, trace, body); err != nil {
		return fmt.Errorf("insert %d outbox rows: %w", n, err)
	}
	return nil
}
