package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/spf13/cobra"
)

// newHealthcheckCmd is the hidden `orderstream healthcheck URL`: the
// container health check of images without a shell or curl (distroless).
func newHealthcheckCmd(_ *globals) *cobra.Command {
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:     "healthcheck URL",
		Short:   "GET URL; exit 0 on a 2xx answer, 1 otherwise (container health checks)",
		Hidden:  true,
		Args:    cobra.ExactArgs(1),
		Example: `  orderstream healthcheck http://127.0.0.1:9465/healthz`,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, cancel := context.WithTimeout(cmd.Context(), timeout)
			defer cancel()
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, args[0], nil)
			if err != nil {
				return usagef("healthcheck: URL %q: %v", args[0], err)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				return fmt.Errorf("healthcheck %s: %w", args[0], err)
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
			if resp.StatusCode < 200 || resp.StatusCode > 299 {
				return fmt.Errorf("healthcheck %s: HTTP %d: %s", args[0], resp.StatusCode, body)
			}
			return nil
		},
	}
	cmd.Flags().DurationVar(&timeout, "timeout", 3*time.Second, "deadline of the request")
	return cmd
}
