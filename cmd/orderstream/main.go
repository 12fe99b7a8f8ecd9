// Command orderstream is the one binary of the platform: migrations, import,
// the CDC relay, the projection daemons, replay, queries and the API.
//
// main reads flags, environment (ORDERSTREAM_*) and an optional YAML file,
// wires the components and runs one subcommand; nothing else reads the
// environment. Exit status: 0 success, 1 failure, 2 usage error, 130 second
// signal.
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
	switch {
	case err == nil, errors.Is(err, context.Canceled):
		return 0
	case errors.As(err, &ue):
		return 2
	default:
		var ec interface{ ExitCode() int }
		if errors.As(err, &ec) {
			return ec.ExitCode()
		}
		return 1
	}
}

// usageError is a mistake in the command line (exit 2).
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error { return &usageError{msg: fmt.Sprintf(format, args...)} }
