package relay

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// ModeNotStarted is the Mode Inspect reports for a slot that has neither a
// checkpoint nor a poll cursor: no relay ever ran with it. It is not a
// Config.Mode.
const ModeNotStarted Mode = "not started"

// Inspection is what PostgreSQL knows of the relay of one slot (Inspect).
// Its JSON form is part of `orderstream status --json`.
type Inspection struct {
	Slot string `json:"slot"`
	// Mode is ModeWAL (relay_checkpoint has a row for the slot), ModePoll
	// (relay_poll_cursor has one) or ModeNotStarted.
	Mode Mode `json:"mode"`
	// OutboxRows is count(*) of the outbox (rows not purged yet).
	OutboxRows int64 `json:"outbox_rows"`
	// CurrentLSN is pg_current_wal_lsn() at inspection time.
	CurrentLSN string `json:"current_lsn"`

	// WAL mode. CheckpointState is relay_checkpoint.state (creating,
	// backfill, streaming); ConfirmedLSN its confirmed_lsn: every outbox row
	// committed at or before it is in Kafka. CommitTime is that
	// transaction's commit time (UTC).
	CheckpointState string    `json:"checkpoint_state,omitempty"`
	ConfirmedLSN    string    `json:"confirmed_lsn,omitempty"`
	CommitTime      time.Time `json:"commit_time,omitzero"`
	// SlotExists, SlotActive (a walsender streams from it), SlotLagBytes
	// (pg_current_wal_lsn() − confirmed_flush_lsn: WAL the slot pins).
	SlotExists   bool  `json:"slot_exists"`
	SlotActive   bool  `json:"slot_active"`
	SlotLagBytes int64 `json:"slot_lag_bytes"`

	// Poll mode: outbox rows after the poll cursor (not yet in Kafka),
	// exact. -1 in WAL mode (rows carry no LSN; see ConfirmedLSN).
	Unrelayed int64 `json:"unrelayed_rows"`
}

// Streaming reports whether the WAL checkpoint is in its steady state
// (streaming: the slot is the source of truth, backfill done).
func (in Inspection) Streaming() bool { return in.CheckpointState == stateStreaming }

// RelayedUpTo reports whether every outbox row committed before target
// (an LSN, e.g. Current of an earlier inspection) is in Kafka. WAL mode:
// the checkpoint is streaming and its ConfirmedLSN is at or past target.
// Poll mode: no unrelayed row is left (target ignored). Not started, or a
// ConfirmedLSN that is not an LSN: false.
func (in Inspection) RelayedUpTo(target pglogrepl.LSN) bool {
	switch in.Mode {
	case ModeWAL:
		confirmed, err := pglogrepl.ParseLSN(in.ConfirmedLSN)
		return err == nil && in.Streaming() && confirmed >= target
	case ModePoll:
		return in.Unrelayed == 0
	default:
		return false
	}
}

// Current returns CurrentLSN as an LSN; 0 when it is not one (Inspect
// never returns such an Inspection).
func (in Inspection) Current() pglogrepl.LSN {
	lsn, err := pglogrepl.ParseLSN(in.CurrentLSN)
	if err != nil {
		return 0
	}
	return lsn
}

// Inspect reads the relay's checkpoint or poll cursor for slot, the slot
// itself (pg_replication_slots) and the outbox row count, each in its own
// statement (not one snapshot). It only reads. It fails when the database
// is unreachable or not migrated (`orderstream migrate`).
func Inspect(ctx context.Context, pool *pgxpool.Pool, slot string) (Inspection, error) {
	in := Inspection{Slot: slot, Mode: ModeNotStarted, Unrelayed: -1}
	if err := pool.QueryRow(ctx, `SELECT count(*), pg_current_wal_lsn()::text FROM outbox`).Scan(&in.OutboxRows, &in.CurrentLSN); err != nil {
		return in, fmt.Errorf("count outbox rows: %w", err)
	}
	if _, err := pglogrepl.ParseLSN(in.CurrentLSN); err != nil {
		return in, fmt.Errorf("current WAL position: %w", err)
	}
	var state string
	var lsn *string
	var at *time.Time
	err := pool.QueryRow(ctx, `SELECT state, confirmed_lsn::text, commit_time FROM relay_checkpoint WHERE slot_name = $1`, slot).Scan(&state, &lsn, &at)
	switch {
	case err == nil:
		in.Mode, in.CheckpointState = ModeWAL, state
		if lsn != nil {
			in.ConfirmedLSN = *lsn
			if _, err := pglogrepl.ParseLSN(*lsn); err != nil {
				return in, fmt.Errorf("relay checkpoint of slot %s: %w", slot, err)
			}
		}
		if at != nil {
			in.CommitTime = at.UTC()
		}
	case !errors.Is(err, pgx.ErrNoRows):
		return in, fmt.Errorf("read relay checkpoint of slot %s: %w", slot, err)
	}
	var active bool
	var lag *int64
	err = pool.QueryRow(ctx, `SELECT active, pg_wal_lsn_diff(pg_current_wal_lsn(), confirmed_flush_lsn)::bigint
		FROM pg_replication_slots WHERE slot_name = $1`, slot).Scan(&active, &lag)
	switch {
	case err == nil:
		in.SlotExists, in.SlotActive = true, active
		if lag != nil {
			in.SlotLagBytes = *lag
		}
	case !errors.Is(err, pgx.ErrNoRows):
		return in, fmt.Errorf("read replication slot %s: %w", slot, err)
	}
	if in.Mode == ModeNotStarted {
		var n int64
		err = pool.QueryRow(ctx, `SELECT count(*) FROM outbox o, relay_poll_cursor c
			WHERE c.name = $1 AND (o.tx_id, o.id) > (c.tx_id, c.id)`, slot).Scan(&n)
		if err != nil {
			return in, fmt.Errorf("read poll cursor %s: %w", slot, err)
		}
		var exists bool
		if err := pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM relay_poll_cursor WHERE name = $1)`, slot).Scan(&exists); err != nil {
			return in, fmt.Errorf("read poll cursor %s: %w", slot, err)
		}
		if exists {
			in.Mode, in.Unrelayed = ModePoll, n
		}
	}
	return in, nil
}

// ResetSlot drops the replication slot named slot unless a walsender is
// streaming from it, then deletes its relay_checkpoint row, so that the
// next WAL relay with that slot starts from scratch (creates the slot and
// backfills the outbox). Both steps do nothing when there is nothing to
// drop. The poll cursor of that name is left alone. Never use it on a
// production slot: everything the slot held back is skipped, and the
// backfill publishes the outbox again (at-least-once, with duplicates).
func ResetSlot(ctx context.Context, pool *pgxpool.Pool, slot string) error {
	_, err := pool.Exec(ctx, `SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = $1 AND NOT active`, slot)
	if err == nil {
		_, err = pool.Exec(ctx, `DELETE FROM relay_checkpoint WHERE slot_name = $1`, slot)
	}
	if err != nil {
		return fmt.Errorf("reset slot %s: %w", slot, err)
	}
	return nil
}
