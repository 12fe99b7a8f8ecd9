package main

import (
	"errors"

	"github.com/spf13/cobra"
)

func newAnalyticsCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:    "analytics",
		Short:  "not built yet",
		Hidden: true,
		RunE:   func(*cobra.Command, []string) error { return errors.New("analytics: not built yet") },
	}
}
