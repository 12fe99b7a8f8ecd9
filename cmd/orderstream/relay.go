package main

import (
	"errors"

	"github.com/spf13/cobra"
)

func newRelayCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:    "relay",
		Short:  "not built yet",
		Hidden: true,
		RunE:   func(*cobra.Command, []string) error { return errors.New("relay: not built yet") },
	}
}
