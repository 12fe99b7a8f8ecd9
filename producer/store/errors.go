package store

import (
	"context"
	"errors"
	"io"
	"net"
	"syscall"

	"github.com/jackc/pgx/v5/pgconn"
)

// Class says what a caller should do with an error of a write.
type Class int

// Classes of errors, from Classify.
const (
	// Fatal: stop; the server refuses the work itself (authentication,
	// permissions, a missing table, a cancelled context, anything unknown).
	Fatal Class = iota
	// Transient: retry the same write after a backoff; the connection was
	// lost or refused, the server is shutting down or starting, or the
	// transaction lost a serialization race or a deadlock. A write that
	// failed this way may have committed when the connection dropped at
	// COMMIT: retry only writes that are idempotent (Save is, by order id).
	Transient
	// Refused: this data can never be written (PostgreSQL data exception,
	// integrity violation or program limit, SQLSTATE classes 22, 23, 54);
	// other writes are not affected.
	Refused
)

func (c Class) String() string {
	switch c {
	case Transient:
		return "transient"
	case Refused:
		return "refused"
	}
	return "fatal"
}

// Classify sorts an error of Save (or of any query on the pool) into a
// Class. The one place the write side decides what is retried:
//   - Transient: SQLSTATE class 08 (connection exception), 57P01
//     admin_shutdown, 57P02 crash_shutdown, 57P03 cannot_connect_now, 40001
//     serialization_failure, 40P01 deadlock_detected, 53300
//     too_many_connections; a connection that could not be made or broke
//     (pgconn.ConnectError, pgconn.ErrConnClosed, net errors, EOF, connection
//     reset or refused, broken pipe); anything pgconn.SafeToRetry says was
//     never sent.
//   - Refused: SQLSTATE classes 22, 23 and 54.
//   - Fatal: context cancellation or deadline, and everything else.
func Classify(err error) Class {
	if err == nil || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return Fatal
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch code := pgErr.Code; {
		case len(code) == 5 && code[:2] == "08",
			code == "57P01", code == "57P02", code == "57P03",
			code == "40001", code == "40P01", code == "53300":
			return Transient
		case len(code) == 5 && (code[:2] == "22" || code[:2] == "23" || code[:2] == "54"):
			return Refused
		}
		return Fatal
	}
	var connectErr *pgconn.ConnectError
	var netErr net.Error
	switch {
	case errors.As(err, &connectErr), errors.As(err, &netErr),
		errors.Is(err, pgconn.ErrConnClosed), errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF),
		errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.EPIPE),
		pgconn.SafeToRetry(err):
		return Transient
	}
	return Fatal
}

// IsConflict reports whether err is (or wraps) ErrConflict: the rule by
// which producer/command's Handler retries a write (command.NewHandler's
// isConflict).
func IsConflict(err error) bool { return errors.Is(err, ErrConflict) }
