package main

import "github.com/spf13/cobra"

// newRollbackCmd is `orderstream rollback PROJECTION|all`, the earlier
// spelling of `orderstream generations rollback`: a hidden, deprecated
// alias.
func newRollbackCmd(g *globals) *cobra.Command {
	fl := &generationsFlags{}
	cmd := &cobra.Command{
		Use:   "rollback PROJECTION|all",
		Short: "Deprecated: 'orderstream generations rollback PROJECTION|all'",
		Args:  cobra.ExactArgs(1),
		RunE:  func(cmd *cobra.Command, args []string) error { return runRollback(cmd, g, fl, args[0]) },
	}
	addIndexPrefixFlag(cmd.Flags(), &fl.prefix)
	return deprecatedAlias(cmd, "generations rollback PROJECTION|all")
}
