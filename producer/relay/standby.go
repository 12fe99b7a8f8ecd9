package relay

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// lockKey is the text hashed into the advisory lock key of a slot.
func (r *Relay) lockKey() string { return "orderstream.relay:" + r.cfg.Slot }

// acquireLock takes the session-level advisory lock of the slot on a
// dedicated connection, waiting as a standby (retrying every StandbyPoll)
// while another session holds it. The lock lives as long as the returned
// connection: when a process dies, its session ends and a standby takes
// over.
func (r *Relay) acquireLock(ctx context.Context) (*pgx.Conn, error) {
	conn, err := pgx.Connect(ctx, r.cfg.PostgresURL)
	if err != nil {
		return nil, fmt.Errorf("connect for the relay lock: %w", err)
	}
	logged := false
	for {
		var ok bool
		if err := conn.QueryRow(ctx, `SELECT pg_try_advisory_lock(hashtextextended($1, 0))`, r.lockKey()).Scan(&ok); err != nil {
			conn.Close(context.Background())
			return nil, fmt.Errorf("try the relay lock: %w", err)
		}
		if ok {
			return conn, nil
		}
		if !logged {
			r.log.Info("another relay holds the lock of this slot: standby", "retry_every", r.cfg.StandbyPoll)
			logged = true
		}
		r.setState(StateStandby)
		select {
		case <-ctx.Done():
			conn.Close(context.Background())
			return nil, ctx.Err()
		case <-time.After(r.cfg.StandbyPoll):
		}
	}
}

// watchLock returns an error as soon as the lock's session is gone (then
// another instance may take over; this one must stop). It pings every
// StandbyPoll and returns nil when ctx is done.
func (r *Relay) watchLock(ctx context.Context, conn *pgx.Conn) error {
	t := time.NewTicker(r.cfg.StandbyPoll)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			err := conn.Ping(pctx)
			cancel()
			if err != nil && ctx.Err() == nil {
				return fmt.Errorf("lost the relay lock's session (another relay may take over): %w", err)
			}
		}
	}
}
