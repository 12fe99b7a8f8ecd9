package main

import (
	"errors"

	"github.com/spf13/cobra"
)

func newTopicCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:    "topic",
		Short:  "not built yet",
		Hidden: true,
		RunE:   func(*cobra.Command, []string) error { return errors.New("topic: not built yet") },
	}
}
