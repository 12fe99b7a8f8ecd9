package relay

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"
	"golang.org/x/sync/errgroup"
)

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
		rows, err := r.pool.Query(ctx, `SELECT id, event_id::text, aggregate_id, aggregate_version, event_type, schema_version, occurred_at,
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
// event_type, schema_version, occurred_at, traceparent, envelope).
func scanEvents(rows pgx.Rows) ([]*event, []int64, error) {
	defer rows.Close()
	var evs []*event
	var ids []int64
	for rows.Next() {
		e := &event{}
		var id int64
		var env string
		if err := rows.Scan(&id, &e.eventID, &e.aggregateID, &e.aggregateVersion, &e.eventType, &e.schemaVersion, &e.occurredAt, &e.traceparent, &env); err != nil {
			return nil, nil, err
		}
		e.envelope = []byte(env)
		e.outboxID = id
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
			if _, err := r.pool.Exec(ctx, `SELECT pg_logical_emit_message(true, '`+heartbeatPrefix+`', now()::text)`); err != nil && ctx.Err() == nil {
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
	defer r.setState(StateActive)

	w := &walStream{r: r, repl: repl, pub: pub, tr: tr, dec: newDecoder(), sent: from}
	loopErr := w.run(ctx)

	// Shutdown or failure: let Kafka ack what is in flight, confirm it, stop.
	sctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := pub.drain(sctx); err != nil && loopErr == nil && ctx.Err() == nil {
		loopErr = err
	}
	if repl.IsClosed() {
		// Nothing to confirm to; the checkpoint still moves so a restart does not redo acked work.
		if lsn, at := tr.position(); lsn > w.sent {
			_ = r.saveConfirmed(sctx, lsn, at)
		}
	} else if err := w.confirm(sctx); err != nil && loopErr == nil && ctx.Err() == nil {
		loopErr = err
	}
	if loopErr != nil && !errors.Is(loopErr, context.Canceled) {
		return loopErr
	}
	lsn, _ := tr.position()
	r.log.Info("stopped streaming", "confirmed_lsn", lsn.String(), "heartbeats", w.heartbeats)
	return ctx.Err()
}

// walStream is the state of one stream call: what was last confirmed to
// the server, when the next standby status is due, the open transaction.
type walStream struct {
	r          *Relay
	repl       *pgconn.PgConn
	pub        *publisher
	tr         *tracker
	dec        *decoder
	sent       pglogrepl.LSN // last position confirmed to the server
	next       time.Time     // when the next standby status is due; zero: now
	cur        *txn          // the open transaction, nil between transactions
	heartbeats int
}

// run receives messages until ctx is done (nil) or one fails (its error).
func (w *walStream) run(ctx context.Context) error {
	w.next = time.Now().Add(w.r.cfg.StatusInterval)
	for {
		if time.Now().After(w.next) {
			if err := w.confirm(ctx); err != nil {
				return err
			}
			w.next = time.Now().Add(w.r.cfg.StatusInterval)
		}
		rctx, cancel := context.WithDeadline(ctx, w.next)
		raw, err := w.repl.ReceiveMessage(rctx)
		cancel()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			if pgconn.Timeout(err) {
				continue
			}
			return fmt.Errorf("receive from slot %s: %w", w.r.cfg.Slot, err)
		}
		if err := w.handle(ctx, raw); err != nil {
			return err
		}
	}
}

// handle acts on one message of the replication connection: an error
// response, a keepalive (a reply requested makes the next standby status
// due now, with the acked position only) or XLogData.
func (w *walStream) handle(ctx context.Context, raw pgproto3.BackendMessage) error {
	switch msg := raw.(type) {
	case *pgproto3.ErrorResponse:
		return fmt.Errorf("slot %s: %w", w.r.cfg.Slot, pgconn.ErrorResponseToPgError(msg))
	case *pgproto3.CopyData:
		if len(msg.Data) == 0 {
			return nil
		}
		switch msg.Data[0] {
		case pglogrepl.PrimaryKeepaliveMessageByteID:
			ka, err := pglogrepl.ParsePrimaryKeepaliveMessage(msg.Data[1:])
			if err != nil {
				return fmt.Errorf("parse keepalive: %w", err)
			}
			if ka.ReplyRequested {
				w.next = time.Time{}
			}
		case pglogrepl.XLogDataByteID:
			ev, err := w.dec.decodeXLogData(msg.Data[1:])
			if err != nil {
				return err
			}
			return w.apply(ctx, ev)
		}
	}
	return nil
}

// apply feeds one decoded event to the tracker and the publisher.
func (w *walStream) apply(ctx context.Context, ev walEvent) error {
	switch ev.kind {
	case walBegin:
		w.cur = w.tr.begin(ev.lsn, ev.commitTime)
	case walInsert:
		x := w.cur
		_, err := w.pub.publish(ctx, ev.event, func() error { return w.confirm(ctx) },
			func() { w.tr.add(x) }, func() { w.tr.ack(x) })
		return err
	case walCommit:
		w.tr.commit(w.cur, ev.lsn)
		w.cur = nil
	case walMessage:
		if ev.prefix == heartbeatPrefix {
			w.heartbeats++
		}
	}
	return nil
}

// confirm writes the tracker's position to the checkpoint when it moved,
// then sends it to the server as the standby status.
func (w *walStream) confirm(ctx context.Context) error {
	lsn, at := w.tr.position()
	if lsn > w.sent {
		if err := w.r.saveConfirmed(ctx, lsn, at); err != nil {
			return err
		}
		w.sent = lsn
		w.r.m.confirmedLSN.Set(float64(lsn))
	}
	if err := pglogrepl.SendStandbyStatusUpdate(ctx, w.repl, pglogrepl.StandbyStatusUpdate{WALWritePosition: w.sent}); err != nil {
		return fmt.Errorf("send standby status at %s: %w", w.sent, err)
	}
	return nil
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
