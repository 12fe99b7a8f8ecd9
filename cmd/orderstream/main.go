// Command orderstream is the one binary of the platform: migrations, import,
// the CDC relay, the projection daemons, replay, queries and the API.
//
// main reads flags, environment (ORDERSTREAM_*) and an optional YAML file,
// wires the components and runs one subcommand; nothing else reads the
// environment. Exit status: 0 success (a daemon stopped by SIGINT/SIGTERM
// included), 1 failure, 2 usage error, 130 a one-shot command (import,
// replay) stopped by a signal before it finished, or a second signal.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/orderstream/orderstream/internal/run"
)

func main() {
	ctx, stop := run.SignalContext(context.Background())
	err := newRootCmd().ExecuteContext(ctx)
	stop()
	os.Exit(exitCode(err))
}

// exitCode maps the command's error to the process status; the error itself
// was printed by cobra or the command.
func exitCode(err error) int {
	var ue *usageError
	var ec interface{ ExitCode() int }
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ue):
		return 2
	case errors.As(err, &ec):
		return ec.ExitCode()
	case errors.Is(err, context.Canceled):
		return 0 // a daemon's graceful stop
	default:
		return 1
	}
}

// interruptedError is a one-shot command stopped by a signal before it
// finished (exit 130): scripts and Jobs must not count it as done.
type interruptedError struct{ err error }

func (e *interruptedError) Error() string { return e.err.Error() }
func (e *interruptedError) Unwrap() error { return e.err }
func (e *interruptedError) ExitCode() int { return 130 }

// unfinished marks err as an interruption when ctx (the command's, cancelled
// by SIGINT/SIGTERM) ended: for commands whose work is not done unless they
// return nil.
func unfinished(ctx context.Context, err error) error {
	if err != nil && ctx.Err() != nil {
		return &interruptedError{err: err}
	}
	return err
}

// usageError is a mistake in the command line (exit 2).
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error { return &usageError{msg: fmt.Sprintf(format, args...)} }
