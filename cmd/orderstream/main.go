// Command orderstream is the one binary of the platform: migrations, import,
// the CDC relay, the projection daemons, replay, queries and the API.
//
// main reads flags, environment (ORDERSTREAM_*) and an optional YAML file,
// wires the components and runs one subcommand; nothing else reads the
// environment. Exit status: 0 success (a daemon stopped by SIGINT/SIGTERM
// included), 1 failure, 2 usage error, 130 any other command stopped by a
// signal before it finished, or a second signal.
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
// was printed by cobra or the command. A command stopped by a signal before
// it finished returns (an error wrapping) context.Canceled: 130. Daemons
// (relay, consume, api, dev) treat SIGINT/SIGTERM as their normal end and
// return nil (see stoppedCleanly).
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
		return 130
	default:
		return 1
	}
}

// stoppedCleanly is a daemon's result: nil when ctx (the command's,
// cancelled by SIGINT/SIGTERM) ended and err is that cancellation, err
// otherwise.
func stoppedCleanly(ctx context.Context, err error) error {
	if ctx.Err() != nil && errors.Is(err, context.Canceled) {
		return nil
	}
	return err
}

// usageError is a mistake in the command line (exit 2).
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error { return &usageError{msg: fmt.Sprintf(format, args...)} }
