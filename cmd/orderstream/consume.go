package main

import (
	"errors"

	"github.com/spf13/cobra"
)

func newConsumeCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:    "consume",
		Short:  "not built yet",
		Hidden: true,
		RunE:   func(*cobra.Command, []string) error { return errors.New("consume: not built yet") },
	}
}
