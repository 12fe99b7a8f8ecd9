package main

import (
	"errors"
	"fmt"

	"github.com/orderstream/orderstream/consumers"
	"github.com/orderstream/orderstream/internal/rebuild"
	"github.com/orderstream/orderstream/producer/relay"
	"github.com/orderstream/orderstream/producer/topic"
	"github.com/orderstream/orderstream/projections"
	"github.com/orderstream/orderstream/projections/analytics"
	"github.com/spf13/cobra"
)

// hint returns err with the command that fixes it, when err is one the
// libraries classify (their errors name no command of this binary); err
// itself otherwise.
func hint(err error) error {
	var busy *rebuild.BusyError
	var left *rebuild.LeftoverError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &left):
		return fmt.Errorf("%w; drop it with `orderstream generations drop %s %d`", err, left.Projection, left.Generation)
	case errors.As(err, &busy) && len(busy.Members) == 0:
		return fmt.Errorf("%w: `orderstream generations drop %s %d`", err, busy.Projection, busy.Generation)
	case errors.Is(err, analytics.ErrOldGeneration):
		return fmt.Errorf("%w; rebuild it with `orderstream replay analytics`", err)
	case errors.Is(err, projections.ErrNotSetUp):
		return fmt.Errorf("%w; run its daemon (`orderstream consume PROJECTION`) or `orderstream generations create PROJECTION`, which set it up", err)
	case errors.Is(err, consumers.ErrNoTopic), errors.Is(err, topic.ErrNotFound):
		return fmt.Errorf("%w; create it with `orderstream topic create` (the relay does with --create-topic)", err)
	case errors.Is(err, rebuild.ErrRelayBehind):
		return fmt.Errorf("%w; start `orderstream relay`", err)
	case errors.Is(err, relay.ErrNotMigrated):
		return fmt.Errorf("%w; run `orderstream migrate` first", err)
	}
	return err
}

// addHints makes every command of the tree under c return its error
// through hint.
func addHints(c *cobra.Command) {
	for _, sub := range c.Commands() {
		addHints(sub)
	}
	if run := c.RunE; run != nil {
		c.RunE = func(cmd *cobra.Command, args []string) error { return hint(run(cmd, args)) }
	}
}
