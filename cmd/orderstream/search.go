package main

import (
	"errors"

	"github.com/spf13/cobra"
)

func newSearchCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:    "search",
		Short:  "not built yet",
		Hidden: true,
		RunE:   func(*cobra.Command, []string) error { return errors.New("search: not built yet") },
	}
}
