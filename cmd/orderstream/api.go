package main

import (
	"errors"

	"github.com/spf13/cobra"
)

func newAPICmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:    "api",
		Short:  "not built yet",
		Hidden: true,
		RunE:   func(*cobra.Command, []string) error { return errors.New("api: not built yet") },
	}
}
