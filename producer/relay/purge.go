package relay

import (
	"context"
	"fmt"
	"time"
)

// purgeChunk is how many outbox rows one DELETE removes at most.
const purgeChunk = 5000

// purgeLoop runs purge every PurgeInterval (and once at start).
func (r *Relay) purgeLoop(ctx context.Context) error {
	t := time.NewTicker(r.cfg.PurgeInterval)
	defer t.Stop()
	for {
		n, err := r.purge(ctx)
		switch {
		case ctx.Err() != nil:
			return nil
		case err != nil:
			r.log.Warn("outbox purge failed; retrying next round", "error", err)
		case n > 0:
			r.log.Info("outbox purged", "rows", n)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// purge deletes outbox rows that are both older than OutboxRetention and
// already relayed, in chunks of purgeChunk rows, and returns how many.
//
// "Already relayed":
//   - WAL mode: recorded_at is more than PurgeSafetyMargin (1 h) before the
//     commit time of the last transaction confirmed in relay_checkpoint, and
//     the checkpoint is streaming (never during a backfill). recorded_at is
//     taken before commit, so a row of a confirmed transaction always
//     qualifies; the margin covers clock skew between writers and the
//     server. A transaction left open for longer than the margin whose rows
//     are not yet relayed could be purged early: keep write transactions
//     short (they are, in orderstream).
//   - poll mode: (tx_id, id) is at or before the stored poll cursor (exact).
func (r *Relay) purge(ctx context.Context) (int64, error) {
	secs := r.cfg.OutboxRetention.Seconds()
	var total int64
	for {
		var q string
		var args []any
		if r.cfg.Mode == ModeWAL {
			var commit *time.Time
			var state string
			err := r.pool.QueryRow(ctx, `SELECT state, commit_time FROM relay_checkpoint WHERE slot_name = $1`, r.cfg.Slot).Scan(&state, &commit)
			if err != nil || state != stateStreaming || commit == nil {
				return total, nil // nothing confirmed yet
			}
			q = `DELETE FROM outbox WHERE id IN (SELECT id FROM outbox
				WHERE recorded_at < least(now() - make_interval(secs => $1), $2::timestamptz - make_interval(secs => $3))
				ORDER BY id LIMIT $4)`
			args = []any{secs, *commit, PurgeSafetyMargin.Seconds(), purgeChunk}
		} else {
			cur, err := r.loadPollCursor(ctx)
			if err != nil {
				return total, err
			}
			q = `DELETE FROM outbox WHERE id IN (SELECT id FROM outbox
				WHERE (tx_id, id) <= ($2::text::xid8, $3::bigint) AND recorded_at < now() - make_interval(secs => $1)
				ORDER BY id LIMIT $4)`
			args = []any{secs, fmt.Sprint(cur.txID), cur.id, purgeChunk}
		}
		tag, err := r.pool.Exec(ctx, q, args...)
		if err != nil {
			return total, fmt.Errorf("purge outbox: %w", err)
		}
		total += tag.RowsAffected()
		r.m.purged.Add(float64(tag.RowsAffected()))
		if tag.RowsAffected() < purgeChunk {
			return total, nil
		}
	}
}
