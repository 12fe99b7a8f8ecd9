package main

import (
	"errors"

	"github.com/spf13/cobra"
)

func newDLQCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:    "dlq",
		Short:  "not built yet",
		Hidden: true,
		RunE:   func(*cobra.Command, []string) error { return errors.New("dlq: not built yet") },
	}
}
