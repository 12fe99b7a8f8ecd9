package main

import (
	"context"
	"log/slog"
	"strings"
	"time"

	"github.com/orderstream/orderstream/internal/tracing"
	"github.com/spf13/cobra"
)

// tracingShutdownTimeout bounds the export of the spans still buffered when
// a command ends.
const tracingShutdownTimeout = 5 * time.Second

// setupTracing turns tracing on for cmd when the OTEL_* environment
// configures it (tracing.Setup; service.name "orderstream-<command>" unless
// OTEL_SERVICE_NAME says otherwise), and makes cmd export the spans still
// buffered once it has run. A failed export at the end is logged, never the
// command's failure.
func setupTracing(cmd *cobra.Command, log *slog.Logger) error {
	shutdown, err := tracing.Setup(cmd.Context(), tracing.Config{Service: strings.ReplaceAll(cmd.CommandPath(), " ", "-")})
	if err != nil {
		return usagef("tracing: %v", err)
	}
	run := cmd.RunE
	if run == nil {
		return nil
	}
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		err := run(cmd, args)
		ctx, cancel := context.WithTimeout(context.WithoutCancel(cmd.Context()), tracingShutdownTimeout)
		defer cancel()
		if serr := shutdown(ctx); serr != nil {
			log.Warn("export of the last spans failed", "err", serr)
		}
		return err
	}
	return nil
}
