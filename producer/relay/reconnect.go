package relay

import (
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"time"

	"github.com/cenkalti/backoff/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/orderstream/orderstream/internal/retry"
)

// produceError is an event Kafka refused for good (the producer retries
// everything else without limit): fatal, never a reason to reconnect.
type produceError struct{ err error }

func (e *produceError) Error() string { return e.err.Error() }
func (e *produceError) Unwrap() error { return e.err }

// connectionLost classifies the error that ended a session: true when the
// connection to the server went away or could not be made — SQLSTATE class
// 08 (connection exception), 57P01/57P02/57P03 (server shutting down,
// crashed, starting up), 53300 (too many connections), a failed dial, a
// closed socket or connection (of PostgreSQL, or of Kafka while a session
// starts: listing the partitions' offsets). The relay then reconnects with
// backoff.
// Everything else (a refused login, ErrSlotLost, ErrNotMigrated, a missing
// topic, an event Kafka refused, a deadline such as a stalled setup step)
// stays fatal.
func connectionLost(err error) bool {
	if err == nil || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		return false
	}
	var pe *produceError
	if errors.As(err, &pe) {
		return false
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch pgErr.Code {
		case "57P01", "57P02", "57P03", "53300":
			return true
		}
		return strings.HasPrefix(pgErr.Code, "08")
	}
	var connectErr *pgconn.ConnectError
	var netErr net.Error
	return errors.As(err, &connectErr) || errors.As(err, &netErr) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, net.ErrClosed) || errors.Is(err, pgconn.ErrConnClosed)
}

// newBackoff is the wait between reconnection attempts: exponential from
// ReconnectInitial to ReconnectMax, ±50 % jitter, never giving up.
func (r *Relay) newBackoff() *backoff.ExponentialBackOff {
	return retry.Exponential(r.cfg.ReconnectInitial, r.cfg.ReconnectMax)
}

// lastError is the error that ended the last session, for /healthz.
type lastError struct {
	err error
	at  time.Time
}
