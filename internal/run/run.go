// Package run holds process lifecycle helpers shared by the commands.
package run

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

// SignalContext returns a context cancelled by the first SIGINT or SIGTERM.
// A second signal exits the process at once with status 130: the operator
// asked twice, so graceful shutdown is abandoned.
func SignalContext(parent context.Context) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(parent)
	ch := make(chan os.Signal, 2)
	signal.Notify(ch, syscall.SIGINT, syscall.SIGTERM)
	go func() {
		select {
		case s := <-ch:
			fmt.Fprintf(os.Stderr, "received %s: shutting down (send again to exit at once)\n", s)
			cancel()
		case <-ctx.Done():
			signal.Stop(ch)
			return
		}
		<-ch
		fmt.Fprintln(os.Stderr, "second signal: exiting now")
		os.Exit(130)
	}()
	return ctx, func() { signal.Stop(ch); cancel() }
}
