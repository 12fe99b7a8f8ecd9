package relay

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5"
)

// Checkpoint states (relay_checkpoint.state).
const (
	stateCreating  = "creating"
	stateBackfill  = "backfill"
	stateStreaming = "streaming"
)

// checkpoint is the relay_checkpoint row of the slot.
type checkpoint struct {
	found      bool
	state      string
	confirmed  pglogrepl.LSN // end LSN of the last transaction fully acked by Kafka
	commitTime time.Time     // its commit time
	snapshot   string        // backfill snapshot (pg_snapshot text), "" if none
}

func (r *Relay) loadCheckpoint(ctx context.Context) (checkpoint, error) {
	var cp checkpoint
	var lsn, snap *string
	var at *time.Time
	err := r.pool.QueryRow(ctx, `SELECT state, confirmed_lsn::text, commit_time, backfill_snapshot::text
		FROM relay_checkpoint WHERE slot_name = $1`, r.cfg.Slot).Scan(&cp.state, &lsn, &at, &snap)
	if errors.Is(err, pgx.ErrNoRows) {
		return cp, nil
	}
	if err != nil {
		return cp, fmt.Errorf("read relay checkpoint of slot %s: %w", r.cfg.Slot, err)
	}
	cp.found = true
	if lsn != nil {
		if cp.confirmed, err = pglogrepl.ParseLSN(*lsn); err != nil {
			return cp, fmt.Errorf("relay checkpoint of slot %s: %w", r.cfg.Slot, err)
		}
	}
	if at != nil {
		cp.commitTime = *at
	}
	if snap != nil {
		cp.snapshot = *snap
	}
	return cp, nil
}

// setCheckpoint writes the whole row of the slot.
func (r *Relay) setCheckpoint(ctx context.Context, state string, lsn pglogrepl.LSN, commitTime time.Time, snapshot string) error {
	var lsnArg, snapArg, timeArg any
	if lsn != 0 || state != stateCreating {
		lsnArg = lsn.String()
	}
	if snapshot != "" {
		snapArg = snapshot
	}
	if !commitTime.IsZero() {
		timeArg = commitTime
	}
	_, err := r.pool.Exec(ctx, `INSERT INTO relay_checkpoint (slot_name, state, confirmed_lsn, commit_time, backfill_snapshot, updated_at)
		VALUES ($1, $2, $3::text::pg_lsn, $4, $5::text::pg_snapshot, now())
		ON CONFLICT (slot_name) DO UPDATE SET state = excluded.state, confirmed_lsn = excluded.confirmed_lsn,
			commit_time = excluded.commit_time, backfill_snapshot = excluded.backfill_snapshot, updated_at = now()`,
		r.cfg.Slot, state, lsnArg, timeArg, snapArg)
	if err != nil {
		return fmt.Errorf("write relay checkpoint of slot %s (%s at %s): %w", r.cfg.Slot, state, lsn, err)
	}
	return nil
}

// saveConfirmed records that everything up to lsn is in Kafka. It runs
// before the position is confirmed to PostgreSQL, so the checkpoint is
// never behind the slot.
func (r *Relay) saveConfirmed(ctx context.Context, lsn pglogrepl.LSN, commitTime time.Time) error {
	tag, err := r.pool.Exec(ctx, `UPDATE relay_checkpoint SET confirmed_lsn = $2::text::pg_lsn, commit_time = $3, updated_at = now()
		WHERE slot_name = $1 AND state = 'streaming'`, r.cfg.Slot, lsn.String(), commitTime)
	if err != nil {
		return fmt.Errorf("write relay checkpoint of slot %s at %s: %w", r.cfg.Slot, lsn, err)
	}
	if tag.RowsAffected() != 1 {
		return fmt.Errorf("write relay checkpoint of slot %s at %s: the row is gone or not streaming (someone changed relay_checkpoint)", r.cfg.Slot, lsn)
	}
	return nil
}

// slotInfo is the slot's row in pg_replication_slots.
type slotInfo struct {
	exists    bool
	plugin    string
	database  string
	confirmed pglogrepl.LSN
}

func (r *Relay) loadSlot(ctx context.Context) (slotInfo, error) {
	var s slotInfo
	var plugin, db, lsn *string
	err := r.pool.QueryRow(ctx, `SELECT plugin, database, confirmed_flush_lsn::text FROM pg_replication_slots WHERE slot_name = $1`,
		r.cfg.Slot).Scan(&plugin, &db, &lsn)
	if errors.Is(err, pgx.ErrNoRows) {
		return s, nil
	}
	if err != nil {
		return s, fmt.Errorf("read replication slot %s: %w", r.cfg.Slot, err)
	}
	s.exists = true
	if plugin != nil {
		s.plugin = *plugin
	}
	if db != nil {
		s.database = *db
	}
	if lsn != nil {
		if s.confirmed, err = pglogrepl.ParseLSN(*lsn); err != nil {
			return s, fmt.Errorf("replication slot %s: %w", r.cfg.Slot, err)
		}
	}
	return s, nil
}

// slotAction is what to do about the slot on start.
type slotAction int

const (
	slotResume   slotAction = iota // stream from the slot
	slotCreate                     // first run: create the slot, backfill what is already in the outbox
	slotRecreate                   // a previous first run died while creating: drop and create again
	slotRebase                     // --accept-slot-reset: adopt the slot's position or create one without backfill
)

// decideSlot is the slot-loss rule. It compares the checkpoint (what the
// relay knows it confirmed) with the slot (what PostgreSQL will stream
// from):
//   - no checkpoint, no slot: first run, create;
//   - checkpoint "creating": a first run died mid-creation, nothing was
//     relayed, recreate;
//   - checkpoint but no slot, or the slot's confirmed position ahead of the
//     checkpoint, or a slot nobody recorded: someone dropped, recreated or
//     advanced it, and the events in between were never relayed. That is
//     ErrSlotLost unless acceptReset (then slotRebase).
func decideSlot(cp checkpoint, s slotInfo, acceptReset bool) (slotAction, error) {
	switch {
	case !cp.found && !s.exists:
		return slotCreate, nil
	case cp.found && cp.state == stateCreating:
		return slotRecreate, nil
	case cp.found && !s.exists:
		if acceptReset {
			return slotRebase, nil
		}
		return 0, fmt.Errorf("%w: the relay checkpoint says events were confirmed up to %s, but the replication slot does not exist any more "+
			"(dropped by hand or lost in a failover). Transactions committed while no slot existed were NOT relayed, and resuming "+
			"from \"now\" would skip them silently. Find the gap (outbox rows recorded after %s), republish them (e.g. run "+
			"`orderstream relay --mode=poll` once: consumers are idempotent), then start again with --accept-slot-reset to create "+
			"a new slot at the current WAL position", ErrSlotLost, cp.confirmed, cp.commitTime.UTC().Format(time.RFC3339))
	case cp.found && s.confirmed > cp.confirmed:
		if acceptReset {
			return slotRebase, nil
		}
		return 0, fmt.Errorf("%w: the replication slot's confirmed position %s is AHEAD of the relay checkpoint %s: the slot was "+
			"recreated or advanced by someone else, so events between may have been skipped. Check the outbox rows committed "+
			"after %s against the topic (`orderstream topic stats --compare-outbox`), republish what is missing, then start "+
			"with --accept-slot-reset to adopt the slot's position", ErrSlotLost, s.confirmed, cp.confirmed, cp.commitTime.UTC().Format(time.RFC3339))
	case !cp.found && s.exists:
		if acceptReset {
			return slotRebase, nil
		}
		return 0, fmt.Errorf("%w: replication slot exists at %s but the relay has no checkpoint for it (created by hand, or the "+
			"relay_checkpoint row was deleted); the relay cannot know what was relayed. Drop the slot to start from scratch "+
			"(with a backfill of the outbox), or start with --accept-slot-reset to adopt it as is", ErrSlotLost, s.confirmed)
	}
	return slotResume, nil
}
