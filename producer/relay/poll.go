package relay

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
)

// pollCursor is the poll relay's position: every row at or before
// (txID, id) is in Kafka.
type pollCursor struct {
	txID uint64
	id   int64
}

func (r *Relay) loadPollCursor(ctx context.Context) (pollCursor, error) {
	var c pollCursor
	var tx string
	err := r.pool.QueryRow(ctx, `SELECT tx_id::text, id FROM relay_poll_cursor WHERE name = $1`, r.cfg.Slot).Scan(&tx, &c.id)
	if errors.Is(err, pgx.ErrNoRows) {
		return c, nil
	}
	if err != nil {
		return c, fmt.Errorf("read poll cursor %s: %w", r.cfg.Slot, err)
	}
	if c.txID, err = strconv.ParseUint(tx, 10, 64); err != nil {
		return c, fmt.Errorf("poll cursor %s: tx_id %q: %w", r.cfg.Slot, tx, err)
	}
	return c, nil
}

func (r *Relay) savePollCursor(ctx context.Context, c pollCursor) error {
	_, err := r.pool.Exec(ctx, `INSERT INTO relay_poll_cursor (name, tx_id, id, updated_at) VALUES ($1, $2::text::xid8, $3, now())
		ON CONFLICT (name) DO UPDATE SET tx_id = excluded.tx_id, id = excluded.id, updated_at = now()`,
		r.cfg.Slot, strconv.FormatUint(c.txID, 10), c.id)
	if err != nil {
		return fmt.Errorf("write poll cursor %s at %d/%d: %w", r.cfg.Slot, c.txID, c.id, err)
	}
	return nil
}

// pollQuery reads the next rows after the cursor in (tx_id, id) order, only
// from transactions below the visibility watermark: tx_id <
// pg_snapshot_xmin(pg_current_snapshot()) means every transaction that
// could still commit has a larger tx_id, so a row read later can never sort
// before the cursor. Reading by id alone would skip rows whose transactions
// commit out of id order.
const pollQuery = `SELECT tx_id::text, id, event_id::text, aggregate_id, aggregate_version, event_type, schema_version, occurred_at,
	coalesce(traceparent, ''), envelope::text
	FROM outbox
	WHERE (tx_id, id) > ($1::text::xid8, $2::bigint) AND tx_id < pg_snapshot_xmin(pg_current_snapshot())
	ORDER BY tx_id, id LIMIT $3`

// runPoll relays by polling: read a batch, produce it, wait for every ack,
// then store the cursor. On ctx cancel it finishes the batch in flight.
func (r *Relay) runPoll(ctx context.Context, pub *publisher) error {
	cur, err := r.loadPollCursor(ctx)
	if err != nil {
		return err
	}
	r.setState(StateStreaming)
	defer r.setState(StateActive)
	r.log.Info("polling", "cursor", fmt.Sprintf("%d/%d", cur.txID, cur.id))
	r.m.confirmedLSN.Set(float64(cur.txID))
	var (
		nextLag time.Time
		warned  blocker // the blocker last warned about
	)
	for ctx.Err() == nil {
		n, next, err := r.pollOnce(ctx, pub, cur)
		if err != nil {
			return err
		}
		if n > 0 {
			cur = next
		}
		if time.Now().After(nextLag) {
			if err := r.pollLag(ctx, cur, &warned); err != nil {
				return err
			}
			nextLag = time.Now().Add(r.cfg.StatusInterval)
		}
		if n > 0 {
			continue
		}
		select {
		case <-ctx.Done():
		case <-time.After(r.cfg.PollIdle):
		}
	}
	return ctx.Err()
}

// pollOnce relays one batch after cur and returns how many rows it read and
// the cursor after them (already stored).
func (r *Relay) pollOnce(ctx context.Context, pub *publisher, cur pollCursor) (int, pollCursor, error) {
	rows, err := r.pool.Query(ctx, pollQuery, strconv.FormatUint(cur.txID, 10), cur.id, r.cfg.PollBatch)
	if err != nil {
		return 0, cur, fmt.Errorf("poll outbox after %d/%d: %w", cur.txID, cur.id, err)
	}
	var evs []*event
	for rows.Next() {
		e := &event{}
		var tx, env string
		var id int64
		if err := rows.Scan(&tx, &id, &e.eventID, &e.aggregateID, &e.aggregateVersion, &e.eventType, &e.schemaVersion, &e.occurredAt, &e.traceparent, &env); err != nil {
			rows.Close()
			return 0, cur, fmt.Errorf("poll outbox after %d/%d: %w", cur.txID, cur.id, err)
		}
		txID, err := strconv.ParseUint(tx, 10, 64)
		if err != nil {
			rows.Close()
			return 0, cur, fmt.Errorf("poll outbox: tx_id %q: %w", tx, err)
		}
		e.envelope = []byte(env)
		e.outboxID = id
		e.pos = Position{Mode: ModePoll, Major: txID, Minor: uint64(id)}
		evs = append(evs, e)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, cur, fmt.Errorf("poll outbox after %d/%d: %w", cur.txID, cur.id, err)
	}
	if len(evs) == 0 {
		return 0, cur, nil
	}
	// The batch is produced with the run context cancelled or not: once
	// started, it is finished so the cursor can move.
	pctx := context.WithoutCancel(ctx)
	for _, e := range evs {
		if _, err := pub.publish(pctx, e, nil, func() {}, func() {}); err != nil {
			return 0, cur, err
		}
	}
	dctx, cancel := context.WithTimeout(pctx, 2*time.Minute)
	defer cancel()
	if err := pub.drain(dctx); err != nil {
		return 0, cur, err
	}
	last := evs[len(evs)-1].pos
	next := pollCursor{txID: last.Major, id: int64(last.Minor)}
	if err := r.savePollCursor(pctx, next); err != nil {
		return 0, cur, err
	}
	r.m.confirmedLSN.Set(float64(next.txID))
	return len(evs), next, nil
}

// pendingQuery returns the age (s) of the first committed outbox row after
// the cursor and whether it waits behind the visibility watermark.
const pendingQuery = `SELECT extract(epoch FROM now() - recorded_at)::float8, tx_id >= pg_snapshot_xmin(pg_current_snapshot())
	FROM outbox WHERE (tx_id, id) > ($1::text::xid8, $2::bigint) ORDER BY tx_id, id LIMIT 1`

// blockerQuery returns the oldest transaction holding an xid on the whole
// server — a backend of any database, or a prepared transaction: it is the
// one that sets pg_snapshot_xmin, the poll relay's watermark.
const blockerQuery = `SELECT what, pid, datname, usename, application_name, state, xact_start,
		extract(epoch FROM now() - xact_start)::float8
	FROM (
		SELECT 'backend' AS what, pid, coalesce(datname::text, '') AS datname, coalesce(usename::text, '') AS usename,
			coalesce(application_name, '') AS application_name, coalesce(state, '') AS state, xact_start, age(backend_xid) AS xage
		FROM pg_stat_activity WHERE backend_xid IS NOT NULL AND xact_start IS NOT NULL
		UNION ALL
		SELECT 'prepared transaction ' || gid, 0, database::text, owner::text, '', 'prepared', prepared, age(transaction)
		FROM pg_prepared_xacts
	) b ORDER BY xage DESC LIMIT 1`

// blocker is the transaction holding the poll relay's watermark.
type blocker struct {
	what, datname, usename, application, state string
	pid                                        int32
	xactStart                                  time.Time
	ageSeconds                                 float64
}

// pollLag sets the lag metrics of poll mode and warns about a stall:
//   - orderstream_relay_lag_seconds: age of the first committed outbox row
//     not yet relayed (0 when there is none), so rows waiting behind an
//     open transaction show as lag;
//   - orderstream_relay_watermark_blocker_seconds: while that row waits
//     behind the watermark, the age of the transaction holding it;
//   - a WARN, once per blocking transaction, when the waiting row is older
//     than Config.StallWarning, naming the backend (pid, database, user,
//     application, state, xact_start) from pg_stat_activity, or the
//     prepared transaction from pg_prepared_xacts.
func (r *Relay) pollLag(ctx context.Context, cur pollCursor, warned *blocker) error {
	var age float64
	var held bool
	err := r.pool.QueryRow(ctx, pendingQuery, strconv.FormatUint(cur.txID, 10), cur.id).Scan(&age, &held)
	if errors.Is(err, pgx.ErrNoRows) {
		age, held, err = 0, false, nil
	}
	if err != nil {
		return fmt.Errorf("poll lag after %d/%d: %w", cur.txID, cur.id, err)
	}
	r.m.lagSeconds.Set(age)
	if !held {
		r.m.blockerSeconds.Set(0)
		if !warned.xactStart.IsZero() {
			r.log.Info("the transaction that held the poll watermark ended; relaying resumed", "pid", warned.pid, "datname", warned.datname)
			*warned = blocker{}
		}
		return nil
	}
	var b blocker
	err = r.pool.QueryRow(ctx, blockerQuery).Scan(&b.what, &b.pid, &b.datname, &b.usename, &b.application, &b.state, &b.xactStart, &b.ageSeconds)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil // it ended between the two queries
	}
	if err != nil {
		return fmt.Errorf("find the transaction holding the poll watermark: %w", err)
	}
	r.m.blockerSeconds.Set(b.ageSeconds)
	if age >= r.cfg.StallWarning.Seconds() && (b.pid != warned.pid || !b.xactStart.Equal(warned.xactStart) || b.what != warned.what) {
		r.log.Warn("committed outbox rows wait behind an open transaction (the poll visibility watermark): nothing after them is "+
			"relayed until it commits or rolls back; end it, or pg_terminate_backend(pid) if it is abandoned",
			"blocker", b.what, "pid", b.pid, "datname", b.datname, "usename", b.usename, "application_name", b.application,
			"state", b.state, "xact_start", b.xactStart.UTC().Format(time.RFC3339Nano),
			"transaction_age_seconds", int64(b.ageSeconds), "oldest_waiting_row_seconds", int64(age))
		*warned = b
	}
	return nil
}
