package main

import (
	"errors"

	"github.com/spf13/cobra"
)

func newRollbackCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:    "rollback",
		Short:  "not built yet",
		Hidden: true,
		RunE:   func(*cobra.Command, []string) error { return errors.New("rollback: not built yet") },
	}
}
