package rebuild

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Relay modes as InspectRelay detects them from the relay's own tables.
const (
	RelayModeWAL     = "wal"         // relay_checkpoint has a row for the slot
	RelayModePoll    = "poll"        // relay_poll_cursor has a row for the slot
	RelayModeUnknown = "not started" // neither: the relay never ran with this slot
)

// RelayState is what PostgreSQL knows of the CDC relay of one slot.
type RelayState struct {
	Slot string `json:"slot"`
	Mode string `json:"mode"`
	// OutboxRows is count(*) of the outbox (rows not purged yet).
	OutboxRows int64 `json:"outbox_rows"`
	// CurrentLSN is pg_current_wal_lsn() at inspection time.
	CurrentLSN string `json:"current_lsn"`

	// WAL mode. CheckpointState is relay_checkpoint.state (creating,
	// backfill, streaming); ConfirmedLSN its confirmed_lsn: every outbox row
	// committed at or before it is in Kafka. CommitTime is that
	// transaction's commit time.
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

	confirmed, current uint64
}

// RelayedUpTo reports whether every outbox row committed before target
// (an LSN, e.g. CurrentLSN of an earlier inspection) is in Kafka. Poll
// mode: no unrelayed row is left (target ignored).
func (r RelayState) RelayedUpTo(target uint64) bool {
	switch r.Mode {
	case RelayModeWAL:
		return r.CheckpointState == "streaming" && r.confirmed >= target
	case RelayModePoll:
		return r.Unrelayed == 0
	default:
		return false
	}
}

// Current returns CurrentLSN as a number.
func (r RelayState) Current() uint64 { return r.current }

// InspectRelay reads the relay's checkpoint or poll cursor for slot, the
// slot itself (pg_replication_slots) and the outbox row count. It fails
// when the database is unreachable or not migrated.
func InspectRelay(ctx context.Context, pool *pgxpool.Pool, slot string) (RelayState, error) {
	r := RelayState{Slot: slot, Mode: RelayModeUnknown, Unrelayed: -1}
	if err := pool.QueryRow(ctx, `SELECT count(*), pg_current_wal_lsn()::text FROM outbox`).Scan(&r.OutboxRows, &r.CurrentLSN); err != nil {
		return r, fmt.Errorf("count outbox rows: %w", err)
	}
	var err error
	if r.current, err = ParseLSN(r.CurrentLSN); err != nil {
		return r, err
	}
	var state string
	var lsn *string
	var at *time.Time
	err = pool.QueryRow(ctx, `SELECT state, confirmed_lsn::text, commit_time FROM relay_checkpoint WHERE slot_name = $1`, slot).Scan(&state, &lsn, &at)
	switch {
	case err == nil:
		r.Mode, r.CheckpointState = RelayModeWAL, state
		if lsn != nil {
			r.ConfirmedLSN = *lsn
			if r.confirmed, err = ParseLSN(*lsn); err != nil {
				return r, err
			}
		}
		if at != nil {
			r.CommitTime = at.UTC()
		}
	case !errors.Is(err, pgx.ErrNoRows):
		return r, fmt.Errorf("read relay checkpoint of slot %s: %w", slot, err)
	}
	var active bool
	var lag *int64
	err = pool.QueryRow(ctx, `SELECT active, pg_wal_lsn_diff(pg_current_wal_lsn(), confirmed_flush_lsn)::bigint
		FROM pg_replication_slots WHERE slot_name = $1`, slot).Scan(&active, &lag)
	switch {
	case err == nil:
		r.SlotExists, r.SlotActive = true, active
		if lag != nil {
			r.SlotLagBytes = *lag
		}
	case !errors.Is(err, pgx.ErrNoRows):
		return r, fmt.Errorf("read replication slot %s: %w", slot, err)
	}
	if r.Mode == RelayModeUnknown {
		var n int64
		err = pool.QueryRow(ctx, `SELECT count(*) FROM outbox o, relay_poll_cursor c
			WHERE c.name = $1 AND (o.tx_id, o.id) > (c.tx_id, c.id)`, slot).Scan(&n)
		if err != nil {
			return r, fmt.Errorf("read poll cursor %s: %w", slot, err)
		}
		var exists bool
		if err := pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM relay_poll_cursor WHERE name = $1)`, slot).Scan(&exists); err != nil {
			return r, fmt.Errorf("read poll cursor %s: %w", slot, err)
		}
		if exists {
			r.Mode, r.Unrelayed = RelayModePoll, n
		}
	}
	return r, nil
}

// ParseLSN parses PostgreSQL's text form of an LSN, "XXX/XXX" (hex).
func ParseLSN(s string) (uint64, error) {
	hi, lo, ok := strings.Cut(s, "/")
	h, err1 := strconv.ParseUint(hi, 16, 32)
	l, err2 := strconv.ParseUint(lo, 16, 32)
	if !ok || err1 != nil || err2 != nil {
		return 0, fmt.Errorf("LSN %q: want XXX/XXX (hex)", s)
	}
	return h<<32 | l, nil
}
