package rebuild

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/orderstream/orderstream/producer/relay"
	"github.com/orderstream/orderstream/producer/topic"
	"github.com/orderstream/orderstream/projections"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Versions maps an order id to an aggregate_version (projections.Versions).
type Versions = projections.Versions

// WriteSide gives the write side's order versions as of one consistent
// snapshot, once every event of that snapshot is in Kafka (the guard then
// knows that an event the read model lacks is either in the topic or lost).
type WriteSide interface {
	RelayedVersions(ctx context.Context) (Versions, error)
}

// ErrRelayBehind: the relay has not relayed the write side's snapshot
// within PostgresWriteSide.RelayWait (stopped, or slower than the writes).
var ErrRelayBehind = errors.New("relay behind")

// Defaults of PostgresWriteSide.
const (
	DefaultRelayWait = 2 * time.Minute
	relayPoll        = 500 * time.Millisecond
)

// PostgresWriteSide reads the write side (producer/store: orders.version)
// from PostgreSQL and waits for the CDC relay of Slot (relay.Inspect) to
// have relayed that snapshot.
type PostgresWriteSide struct {
	Pool *pgxpool.Pool // required
	Slot string        // the relay's replication slot (or poll cursor name); required
	// RelayWait bounds the wait for the relay (default DefaultRelayWait, 2
	// min). WAL mode waits for the confirmed LSN to pass the snapshot's WAL
	// position; poll mode for no unrelayed outbox row (relay.Inspection.RelayedUpTo).
	RelayWait time.Duration
}

// RelayedVersions implements WriteSide: order_id → version of every order,
// read in one REPEATABLE READ transaction together with pg_current_wal_lsn()
// (taken after the snapshot, so every commit visible in it lies below),
// then waits for the relay. It fails when the relay has not caught up
// within RelayWait (the comparison would be unfounded), naming its state.
func (w PostgresWriteSide) RelayedVersions(ctx context.Context) (Versions, error) {
	vs := Versions{}
	var id string
	var v int64
	err := w.relayed(ctx, `SELECT order_id, version FROM orders`, []any{&id, &v}, func() { vs[id] = v })
	if err != nil {
		return nil, err
	}
	return vs, nil
}

// RelayedFacts implements FactWriteSide as RelayedVersions does, from the
// same snapshot rules: orders.version, orders.status (the aggregate's
// schemas.Fold), orders.total in thousandths (exact: amounts have at most
// schemas.MoneyScale decimals) and the order's rows in order_lines.
func (w PostgresWriteSide) RelayedFacts(ctx context.Context) (map[string]Facts, error) {
	fs := map[string]Facts{}
	var id string
	var f Facts
	err := w.relayed(ctx, `SELECT o.order_id, o.version, o.status, (o.total * 1000)::bigint,
			(SELECT count(*) FROM order_lines l WHERE l.order_id = o.order_id)
		FROM orders o`, []any{&id, &f.Version, &f.Status, &f.TotalMilli, &f.Lines}, func() { fs[id] = f })
	if err != nil {
		return nil, err
	}
	return fs, nil
}

// relayed runs query in one REPEATABLE READ, read-only transaction, calling
// row after scanning each row into dest, and returns once the relay of
// w.Slot has relayed the snapshot (see RelayedVersions).
func (w PostgresWriteSide) relayed(ctx context.Context, query string, dest []any, row func()) error {
	tx, err := w.Pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return fmt.Errorf("write side: begin: %w", err)
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }() // read-only: nothing to lose
	var lsnText string
	// The snapshot is taken at this first statement; the LSN read in it is
	// at or after every commit the snapshot sees.
	if err := tx.QueryRow(ctx, `SELECT pg_current_wal_lsn()::text`).Scan(&lsnText); err != nil {
		return fmt.Errorf("write side: WAL position: %w", err)
	}
	lsn, err := pglogrepl.ParseLSN(lsnText)
	if err != nil {
		return fmt.Errorf("write side: %w", err)
	}
	rows, err := tx.Query(ctx, query)
	if err != nil {
		return fmt.Errorf("write side: read orders: %w", err)
	}
	if _, err := pgx.ForEachRow(rows, dest, func() error { row(); return nil }); err != nil {
		return fmt.Errorf("write side: read orders: %w", err)
	}
	wait := w.RelayWait
	if wait <= 0 {
		wait = DefaultRelayWait
	}
	deadline := time.Now().Add(wait)
	for {
		rs, err := relay.Inspect(ctx, w.Pool, w.Slot)
		if err == nil && rs.RelayedUpTo(lsn) {
			return nil
		}
		if time.Now().After(deadline) {
			if err != nil {
				return fmt.Errorf("write side: relay of slot %s: %w", w.Slot, err)
			}
			return fmt.Errorf("write side: the relay of slot %s has not relayed the write side's state (WAL %s) within %s: %s: %w",
				w.Slot, lsnText, wait, relaySummaryOf(rs), ErrRelayBehind)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(relayPoll):
		}
	}
}

func relaySummaryOf(r relay.Inspection) string {
	switch r.Mode {
	case relay.ModeWAL:
		return fmt.Sprintf("checkpoint %s, confirmed %s", r.CheckpointState, r.ConfirmedLSN)
	case relay.ModePoll:
		return fmt.Sprintf("poll mode, %d outbox rows not in Kafka", r.Unrelayed)
	default:
		return "the relay never ran with this slot"
	}
}

// maxExamples bounds the order ids a VersionDiff lists per kind.
const maxExamples = 5

// VersionDiff is how a read model's order versions compare with the write
// side's (CompareVersions).
type VersionDiff struct {
	Orders   int `json:"orders"`    // orders on the write side
	Agree    int `json:"agree"`     // read model at the write side's version (or later)
	InFlight int `json:"in_flight"` // behind, but their next event is past the rebuild's end offsets
	// Missing counts orders absent from the read model, Stale orders behind
	// it, with at most 5 examples each ("<order> (read model v1, write side
	// v3)" for Stale), in order id order.
	Missing         int      `json:"missing"`
	MissingExamples []string `json:"missing_examples,omitempty"`
	Stale           int      `json:"stale"`
	StaleExamples   []string `json:"stale_examples,omitempty"`
}

// OK reports whether the read model holds every order at its version, apart
// from what is in flight.
func (d VersionDiff) OK() bool { return d.Missing == 0 && d.Stale == 0 }

// String summarises d for a message.
func (d VersionDiff) String() string {
	s := fmt.Sprintf("%d of %d orders agree with the write side, %d in flight", d.Agree, d.Orders, d.InFlight)
	if d.Missing > 0 {
		s += fmt.Sprintf("; %d missing (e.g. %s)", d.Missing, strings.Join(d.MissingExamples, ", "))
	}
	if d.Stale > 0 {
		s += fmt.Sprintf("; %d stale (e.g. %s)", d.Stale, strings.Join(d.StaleExamples, ", "))
	}
	return s
}

// CompareVersions compares a read model's versions (got) with the write
// side's (want) order by order. An order agrees when got ≥ want: a read
// model may be ahead of a snapshot, with events written after it. An order
// behind (got < want, absent = 0) is in flight when pending, the lowest
// version of each order among the records past the rebuild's end offsets,
// holds its next version or an earlier one (pending[o] ≤ got+1): the daemon
// applies those; otherwise it is missing (got = 0) or stale. Orders the
// read model has and the write side has not are written after the snapshot
// and not judged. Cost: one pass over want.
func CompareVersions(want, got, pending Versions) VersionDiff {
	d := VersionDiff{Orders: len(want)}
	for _, id := range slices.Sorted(maps.Keys(want)) {
		w, g := want[id], got[id]
		switch Judge(w, g, pending[id]) {
		case VerdictAgree:
			d.Agree++
		case VerdictInFlight:
			d.InFlight++
		case VerdictMissing:
			d.Missing++
			if len(d.MissingExamples) < maxExamples {
				d.MissingExamples = append(d.MissingExamples, id)
			}
		case VerdictStale:
			d.Stale++
			if len(d.StaleExamples) < maxExamples {
				d.StaleExamples = append(d.StaleExamples, fmt.Sprintf("%s (read model v%d, write side v%d)", id, g, w))
			}
		}
	}
	return d
}

// Verdict is how one order of a read model compares with the write side
// (Judge).
type Verdict string

// The verdicts of Judge.
const (
	VerdictAgree    Verdict = "agree"     // read model at the write side's version or later
	VerdictInFlight Verdict = "in_flight" // behind, its next event relayed past what the read model applied
	VerdictMissing  Verdict = "missing"   // absent from the read model, nothing in flight
	VerdictStale    Verdict = "stale"     // behind, nothing in flight
)

// Judge is the one rule of CompareVersions for one order: want is its
// version on the write side, got in the read model (0: absent), pending the
// lowest version among its events past what the read model applied (0:
// none). See CompareVersions.
func Judge(want, got, pending int64) Verdict {
	switch {
	case got >= want:
		return VerdictAgree
	case pending > 0 && pending <= got+1:
		return VerdictInFlight
	case got == 0:
		return VerdictMissing
	default:
		return VerdictStale
	}
}

// PendingVersions reads the records of topic in [from[p], to[p]) and returns
// the lowest aggregate_version header per record key (order id): the events
// relayed past a rebuild's end offsets. A record without a parsable header
// is not counted.
func PendingVersions(ctx context.Context, brokers []string, topicName string, from, to map[int32]int64, opts ...kgo.Opt) (Versions, error) {
	pending := Versions{}
	err := topic.ReadRange(ctx, brokers, topicName, from, to, func(r *kgo.Record) {
		for _, h := range r.Headers {
			if h.Key != "aggregate_version" {
				continue
			}
			v, err := strconv.ParseInt(string(h.Value), 10, 64)
			if err != nil || v < 1 {
				return
			}
			if cur, ok := pending[string(r.Key)]; !ok || v < cur {
				pending[string(r.Key)] = v
			}
			return
		}
	}, opts...)
	if err != nil {
		return nil, fmt.Errorf("read the events past the end offsets: %w", err)
	}
	return pending, nil
}
