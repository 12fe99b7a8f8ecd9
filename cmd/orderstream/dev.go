package main

import (
	"errors"

	"github.com/spf13/cobra"
)

func newDevCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:    "dev",
		Short:  "not built yet",
		Hidden: true,
		RunE:   func(*cobra.Command, []string) error { return errors.New("dev: not built yet") },
	}
}
