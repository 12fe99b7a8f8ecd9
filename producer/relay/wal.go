package relay

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"
	"golang.org/x/sync/errgroup"
)

// outboxColumns are the outbox columns the relay reads, by name.
type outboxColumns struct {
	id, eventID, aggregateID, aggregateVersion, eventType, occurredAt, traceparent, envelope int
}

func columnsOf(rel *pglogrepl.RelationMessage) (outboxColumns, error) {
	idx := map[string]int{}
	for i, c := range rel.Columns {
		idx[c.Name] = i
	}
	var oc outboxColumns
	var missing []string
	get := func(name string, dst *int) {
		i, ok := idx[name]
		if !ok {
			missing = append(missing, name)
		}
		*dst = i
	}
	get("id", &oc.id)
	get("event_id", &oc.eventID)
	get("aggregate_id", &oc.aggregateID)
	get("aggregate_version", &oc.aggregateVersion)
	get("event_type", &oc.eventType)
	get("occurred_at", &oc.occurredAt)
	get("traceparent", &oc.traceparent)
	get("envelope", &oc.envelope)
	if len(missing) > 0 {
		return oc, fmt.Errorf("relation %s.%s lacks outbox columns %v", rel.Namespace, rel.RelationName, missing)
	}
	return oc, nil
}

// decodeInsert turns an outbox INSERT into an event (position not set).
func (oc outboxColumns) decodeInsert(t *pglogrepl.TupleData) (*event, error) {
	col := func(i int) []byte {
		if i >= len(t.Columns) || t.Columns[i].DataType != pglogrepl.TupleDataTypeText {
			return nil
		}
		return t.Columns[i].Data
	}
	e := &event{
		eventID:     string(col(oc.eventID)),
		aggregateID: string(col(oc.aggregateID)),
		eventType:   string(col(oc.eventType)),
		traceparent: string(col(oc.traceparent)),
		envelope:    col(oc.envelope),
	}
	var err error
	if e.aggregateVersion, err = strconv.ParseInt(string(col(oc.aggregateVersion)), 10, 64); err != nil {
		return nil, fmt.Errorf("outbox row %s: aggregate_version: %w", col(oc.id), err)
	}
	if e.occurredAt, err = parsePgTime(string(col(oc.occurredAt))); err != nil {
		return nil, fmt.Errorf("outbox row %s: occurred_at: %w", col(oc.id), err)
	}
	if e.envelope == nil || e.aggregateID == "" || e.eventID == "" {
		return nil, fmt.Errorf("outbox row %s: envelope, aggregate_id or event_id missing from the WAL record", col(oc.id))
	}
	return e, nil
}

// parsePgTime parses timestamptz text output (DateStyle ISO).
func parsePgTime(s string) (time.Time, error) {
	for _, layout := range []string{"2006-01-02 15:04:05.999999999-07", "2006-01-02 15:04:05.999999999-07:00", "2006-01-02 15:04:05.999999999-07:00:00"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC(), nil
		}
	}
	return time.Time{}, fmt.Errorf("timestamp %q: not in ISO output format", s)
}

// poolMaxConns is the size of the relay's connection pool; the advisory
// lock and the replication stream use connections of their own.
const poolMaxConns = 8

// setupStepTimeout bounds each short setup query (publication, checkpoint,
// slot lookup, snapshot import), so a stalled step fails Run with an error
// instead of hanging it.
const setupStepTimeout = 30 * time.Second

// step runs one setup step under setupStepTimeout.
func (r *Relay) step(ctx context.Context, f func(context.Context) error) error {
	sctx, cancel := context.WithTimeout(ctx, setupStepTimeout)
	defer cancel()
	if err := f(sctx); err != nil {
		if errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil {
			return fmt.Errorf("relay setup stalled for %s: %w", setupStepTimeout, err)
		}
		return err
	}
	return nil
}

// runWAL sets up the publication and slot, backfills on the first run and
// streams.
func (r *Relay) runWAL(ctx context.Context, pub *publisher) error {
	if err := r.step(ctx, r.ensurePublication); err != nil {
		return err
	}
	rcfg, err := pgconn.ParseConfig(r.cfg.PostgresURL)
	if err != nil {
		return fmt.Errorf("postgres URL: %w", err)
	}
	rcfg.RuntimeParams["replication"] = "database"
	rcfg.RuntimeParams["TimeZone"] = "UTC"
	rcfg.RuntimeParams["DateStyle"] = "ISO"
	rcfg.RuntimeParams["application_name"] = "orderstream-relay"
	repl, err := pgconn.ConnectConfig(ctx, rcfg)
	if err != nil {
		return fmt.Errorf("replication connection (needs wal_level=logical and a role with REPLICATION): %w", err)
	}
	defer repl.Close(context.Background())

	var cp checkpoint
	var slot slotInfo
	err = r.step(ctx, func(ctx context.Context) error {
		var err error
		if cp, err = r.loadCheckpoint(ctx); err != nil {
			return err
		}
		slot, err = r.loadSlot(ctx)
		return err
	})
	if err != nil {
		return err
	}
	action, err := decideSlot(cp, slot, r.cfg.AcceptSlotReset)
	if err != nil {
		return err
	}
	if slot.exists && action == slotResume && slot.plugin != "pgoutput" {
		return fmt.Errorf("replication slot %s uses plugin %q, want pgoutput; drop it or choose another --slot", r.cfg.Slot, slot.plugin)
	}
	switch action {
	case slotRecreate:
		if slot.exists {
			r.log.Warn("a previous first run died while creating the slot; recreating it")
			if err := pglogrepl.DropReplicationSlot(ctx, repl, r.cfg.Slot, pglogrepl.DropReplicationSlotOptions{Wait: true}); err != nil {
				return fmt.Errorf("drop half-created slot %s: %w", r.cfg.Slot, err)
			}
		}
		fallthrough
	case slotCreate:
		if err := r.createSlot(ctx, repl, true); err != nil {
			return err
		}
	case slotRebase:
		if slot.exists {
			r.log.Warn("--accept-slot-reset: adopting the slot's position; events between the old checkpoint and it are NOT relayed",
				"checkpoint_lsn", cp.confirmed.String(), "slot_lsn", slot.confirmed.String())
			if err := r.setCheckpoint(ctx, stateStreaming, slot.confirmed, time.Now(), ""); err != nil {
				return err
			}
		} else {
			r.log.Warn("--accept-slot-reset: creating a new slot at the current WAL position; events committed while no slot existed are NOT relayed",
				"checkpoint_lsn", cp.confirmed.String())
			if err := r.createSlot(ctx, repl, false); err != nil {
				return err
			}
		}
	}
	err = r.step(ctx, func(ctx context.Context) error {
		var err error
		cp, err = r.loadCheckpoint(ctx)
		return err
	})
	if err != nil {
		return err
	}
	if cp.state == stateBackfill {
		if err := r.backfill(ctx, pub, cp.snapshot); err != nil {
			return err
		}
		if err := r.setCheckpoint(ctx, stateStreaming, cp.confirmed, time.Now(), ""); err != nil {
			return err
		}
		cp.state = stateStreaming
		cp.commitTime = time.Now()
	}

	tr := newTracker(cp.confirmed, cp.commitTime)
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return r.heartbeats(gctx) })
	g.Go(func() error { return r.lagLoop(gctx, tr) })
	g.Go(func() error { return r.stream(gctx, repl, pub, tr, cp.confirmed) })
	return g.Wait()
}

func (r *Relay) ensurePublication(ctx context.Context) error {
	var exists bool
	if err := r.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_publication WHERE pubname = $1)`, r.cfg.Publication).Scan(&exists); err != nil {
		return fmt.Errorf("look up publication %s: %w", r.cfg.Publication, err)
	}
	if exists {
		return nil
	}
	if _, err := r.pool.Exec(ctx, `CREATE PUBLICATION `+pgx.Identifier{r.cfg.Publication}.Sanitize()+` FOR TABLE outbox WITH (publish = 'insert')`); err != nil {
		return fmt.Errorf("create publication %s: %w", r.cfg.Publication, err)
	}
	r.log.Info("publication created", "publication", r.cfg.Publication)
	return nil
}

// createSlot creates the slot. With backfill it exports the slot's snapshot
// and records it: the outbox rows visible in it (committed before the slot's
// consistent point) are published by backfill; everything after comes
// through the slot.
func (r *Relay) createSlot(ctx context.Context, repl *pgconn.PgConn, backfill bool) error {
	if err := r.setCheckpoint(ctx, stateCreating, 0, time.Time{}, ""); err != nil {
		return err
	}
	action := "NOEXPORT_SNAPSHOT"
	if backfill {
		action = "EXPORT_SNAPSHOT"
	}
	res, err := pglogrepl.CreateReplicationSlot(ctx, repl, r.cfg.Slot, "pgoutput",
		pglogrepl.CreateReplicationSlotOptions{Mode: pglogrepl.LogicalReplication, SnapshotAction: action})
	if err != nil {
		return fmt.Errorf("create replication slot %s: %w", r.cfg.Slot, err)
	}
	lsn, err := pglogrepl.ParseLSN(res.ConsistentPoint)
	if err != nil {
		return fmt.Errorf("create replication slot %s: consistent point: %w", r.cfg.Slot, err)
	}
	r.log.Info("replication slot created", "lsn", lsn.String(), "backfill", backfill)
	if !backfill {
		return r.setCheckpoint(ctx, stateStreaming, lsn, time.Now(), "")
	}
	// The exported snapshot lives only while the replication connection
	// stays idle: bound the import and the checkpoint write, so a stall
	// becomes an error (the checkpoint stays "creating" and the next run
	// recreates the slot) instead of a relay that hangs before the backfill.
	sctx, cancel := context.WithTimeout(ctx, setupStepTimeout)
	defer cancel()
	var snap string
	err = pgx.BeginTxFunc(sctx, r.pool, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
		if _, err := tx.Exec(sctx, `SET TRANSACTION SNAPSHOT `+quoteLiteral(res.SnapshotName)); err != nil {
			return err
		}
		return tx.QueryRow(sctx, `SELECT pg_current_snapshot()::text`).Scan(&snap)
	})
	if err != nil {
		return fmt.Errorf("import the snapshot of slot %s (within %s): %w", r.cfg.Slot, setupStepTimeout, err)
	}
	return r.setCheckpoint(sctx, stateBackfill, lsn, time.Now(), snap)
}

func quoteLiteral(s string) string {
	out := []byte{'\''}
	for i := 0; i < len(s); i++ {
		if s[i] == '\'' {
			out = append(out, '\'')
		}
		out = append(out, s[i])
	}
	return string(append(out, '\''))
}

// backfill publishes the outbox rows visible in the slot's snapshot, in id
// order, at positions "0/0/<id>" (before every streamed position). After a
// crash it starts over; rows already in their partition are skipped as
// duplicates.
func (r *Relay) backfill(ctx context.Context, pub *publisher, snapshot string) error {
	r.log.Info("backfilling outbox rows committed before the slot existed")
	var after int64
	total := 0
	for {
		rows, err := r.pool.Query(ctx, `SELECT id, event_id::text, aggregate_id, aggregate_version, event_type, occurred_at,
			coalesce(traceparent, ''), envelope::text
			FROM outbox WHERE id > $1 AND pg_visible_in_snapshot(tx_id, $2::text::pg_snapshot) ORDER BY id LIMIT $3`,
			after, snapshot, r.cfg.PollBatch)
		if err != nil {
			return fmt.Errorf("backfill after outbox id %d: %w", after, err)
		}
		evs, ids, err := scanEvents(rows)
		if err != nil {
			return fmt.Errorf("backfill after outbox id %d: %w", after, err)
		}
		if len(evs) == 0 {
			break
		}
		for i, e := range evs {
			e.pos = Position{Mode: ModeWAL, Major: 0, Minor: uint64(ids[i])}
			if _, err := pub.publish(ctx, e, nil, func() {}, func() {}); err != nil {
				return err
			}
		}
		after = ids[len(ids)-1]
		total += len(evs)
	}
	if err := pub.drain(ctx); err != nil {
		return err
	}
	r.log.Info("backfill done", "events", total)
	return nil
}

// scanEvents reads rows of (id, event_id, aggregate_id, aggregate_version,
// event_type, occurred_at, traceparent, envelope).
func scanEvents(rows pgx.Rows) ([]*event, []int64, error) {
	defer rows.Close()
	var evs []*event
	var ids []int64
	for rows.Next() {
		e := &event{}
		var id int64
		var env string
		if err := rows.Scan(&id, &e.eventID, &e.aggregateID, &e.aggregateVersion, &e.eventType, &e.occurredAt, &e.traceparent, &env); err != nil {
			return nil, nil, err
		}
		e.envelope = []byte(env)
		evs = append(evs, e)
		ids = append(ids, id)
	}
	return evs, ids, rows.Err()
}

// heartbeats writes a transactional logical message every Heartbeat. It
// arrives through the slot as an empty transaction, so the confirmed
// position moves even when the outbox is idle and other tables are busy
// (otherwise the slot would pin WAL until the disk fills).
func (r *Relay) heartbeats(ctx context.Context) error {
	t := time.NewTicker(r.cfg.Heartbeat)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			if _, err := r.pool.Exec(ctx, `SELECT pg_logical_emit_message(true, 'orderstream.heartbeat', now()::text)`); err != nil && ctx.Err() == nil {
				r.log.Warn("heartbeat failed", "error", err)
			}
		}
	}
}

// lagLoop updates the lag metrics every StatusInterval (bytes every 5th).
func (r *Relay) lagLoop(ctx context.Context, tr *tracker) error {
	t := time.NewTicker(r.cfg.StatusInterval)
	defer t.Stop()
	for n := 0; ; n++ {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		if at := tr.oldest(); !at.IsZero() {
			r.m.lagSeconds.Set(time.Since(at).Seconds())
		}
		if n%5 != 0 {
			continue
		}
		var lag *int64
		err := r.pool.QueryRow(ctx, `SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), confirmed_flush_lsn)::bigint
			FROM pg_replication_slots WHERE slot_name = $1`, r.cfg.Slot).Scan(&lag)
		if err == nil && lag != nil {
			r.m.lagBytes.Set(float64(*lag))
		}
	}
}

// stream reads the slot from its confirmed position and produces every
// outbox INSERT at once (no transaction is buffered; the publisher bounds
// what is in flight). It confirms, every StatusInterval and while blocked on
// the bound, the tracker's position: the end of the last transaction that,
// with every earlier one, is fully acked — after writing it to the
// checkpoint. On ctx cancel it drains the producer, confirms and returns
// ctx's error.
func (r *Relay) stream(ctx context.Context, repl *pgconn.PgConn, pub *publisher, tr *tracker, from pglogrepl.LSN) error {
	if err := r.startReplication(ctx, repl); err != nil {
		return err
	}
	r.setState(StateStreaming)
	r.log.Info("streaming", "lsn", from.String())
	r.m.confirmedLSN.Set(float64(from))
	sent := from
	confirm := func(ctx context.Context) error {
		lsn, at := tr.position()
		if lsn > sent {
			if err := r.saveConfirmed(ctx, lsn, at); err != nil {
				return err
			}
			sent = lsn
			r.m.confirmedLSN.Set(float64(lsn))
		}
		if err := pglogrepl.SendStandbyStatusUpdate(ctx, repl, pglogrepl.StandbyStatusUpdate{WALWritePosition: sent}); err != nil {
			return fmt.Errorf("send standby status at %s: %w", sent, err)
		}
		return nil
	}
	defer r.setState(StateActive)

	var (
		columns   = map[uint32]outboxColumns{}
		cur       *txn
		curLSN    pglogrepl.LSN
		index     uint64
		next      = time.Now().Add(r.cfg.StatusInterval)
		loopErr   error
		heartbeat = 0
	)
	for loopErr == nil {
		if time.Now().After(next) {
			if loopErr = confirm(ctx); loopErr != nil {
				break
			}
			next = time.Now().Add(r.cfg.StatusInterval)
		}
		rctx, cancel := context.WithDeadline(ctx, next)
		raw, err := repl.ReceiveMessage(rctx)
		cancel()
		if err != nil {
			if ctx.Err() != nil {
				break
			}
			if pgconn.Timeout(err) {
				continue
			}
			loopErr = fmt.Errorf("receive from slot %s: %w", r.cfg.Slot, err)
			break
		}
		switch msg := raw.(type) {
		case *pgproto3.ErrorResponse:
			loopErr = fmt.Errorf("slot %s: %w", r.cfg.Slot, pgconn.ErrorResponseToPgError(msg))
			continue
		case *pgproto3.CopyData:
			if len(msg.Data) == 0 {
				continue
			}
			switch msg.Data[0] {
			case pglogrepl.PrimaryKeepaliveMessageByteID:
				ka, err := pglogrepl.ParsePrimaryKeepaliveMessage(msg.Data[1:])
				if err != nil {
					loopErr = fmt.Errorf("parse keepalive: %w", err)
					continue
				}
				if ka.ReplyRequested {
					next = time.Time{} // reply now, with the acked position only
				}
			case pglogrepl.XLogDataByteID:
				xld, err := pglogrepl.ParseXLogData(msg.Data[1:])
				if err != nil {
					loopErr = fmt.Errorf("parse XLogData: %w", err)
					continue
				}
				lm, err := pglogrepl.Parse(xld.WALData)
				if err != nil {
					loopErr = fmt.Errorf("decode pgoutput message at %s: %w", xld.WALStart, err)
					continue
				}
				switch m := lm.(type) {
				case *pglogrepl.RelationMessage:
					if m.RelationName == "outbox" {
						oc, err := columnsOf(m)
						if err != nil {
							loopErr = err
							continue
						}
						columns[m.RelationID] = oc
					}
				case *pglogrepl.BeginMessage:
					cur = tr.begin(m.FinalLSN, m.CommitTime)
					curLSN, index = m.FinalLSN, 0
				case *pglogrepl.InsertMessage:
					oc, ok := columns[m.RelationID]
					if !ok || cur == nil {
						continue // another table of the publication
					}
					e, err := oc.decodeInsert(m.Tuple)
					if err != nil {
						loopErr = fmt.Errorf("transaction committing at %s: %w", curLSN, err)
						continue
					}
					index++
					e.pos = Position{Mode: ModeWAL, Major: uint64(curLSN), Minor: index}
					x := cur
					_, loopErr = pub.publish(ctx, e, func() error { return confirm(ctx) },
						func() { tr.add(x) }, func() { tr.ack(x) })
				case *pglogrepl.CommitMessage:
					if cur != nil {
						tr.commit(cur, m.TransactionEndLSN)
					}
					cur = nil
				case *pglogrepl.LogicalDecodingMessage:
					if m.Prefix == "orderstream.heartbeat" {
						heartbeat++
					}
				}
			}
		}
	}
	// Shutdown or failure: let Kafka ack what is in flight, confirm it, stop.
	sctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := pub.drain(sctx); err != nil && loopErr == nil && ctx.Err() == nil {
		loopErr = err
	}
	if repl.IsClosed() {
		// Nothing to confirm to; the checkpoint still moves so a restart does not redo acked work.
		if lsn, at := tr.position(); lsn > sent {
			_ = r.saveConfirmed(sctx, lsn, at)
		}
	} else if err := confirm(sctx); err != nil && loopErr == nil && ctx.Err() == nil {
		loopErr = err
	}
	if loopErr != nil && !errors.Is(loopErr, context.Canceled) {
		return loopErr
	}
	lsn, _ := tr.position()
	r.log.Info("stopped streaming", "confirmed_lsn", lsn.String(), "heartbeats", heartbeat)
	return ctx.Err()
}

// startReplication starts streaming from the slot's confirmed position. A
// slot still held by a dying predecessor (SQLSTATE 55006) is retried for up
// to a minute.
func (r *Relay) startReplication(ctx context.Context, repl *pgconn.PgConn) error {
	opts := pglogrepl.StartReplicationOptions{PluginArgs: []string{
		"proto_version '1'",
		"publication_names " + quoteLiteral(r.cfg.Publication),
		"messages 'true'",
	}}
	deadline := time.Now().Add(time.Minute)
	for {
		err := pglogrepl.StartReplication(ctx, repl, r.cfg.Slot, 0, opts)
		var pgErr *pgconn.PgError
		if err == nil {
			return nil
		}
		if !errors.As(err, &pgErr) || pgErr.Code != "55006" || time.Now().After(deadline) {
			return fmt.Errorf("start replication on slot %s: %w", r.cfg.Slot, err)
		}
		r.log.Info("slot still held by a previous relay; retrying", "error", pgErr.Message)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(r.cfg.StandbyPoll):
		}
	}
}
