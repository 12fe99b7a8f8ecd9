package main

import (
	"fmt"
	"strconv"

	"github.com/orderstream/orderstream/internal/rebuild"
	"github.com/spf13/cobra"
)

func newRollbackCmd(g *globals) *cobra.Command {
	var prefix string
	cmd := &cobra.Command{
		Use:   "rollback PROJECTION",
		Short: "Serve again the generation the last cutover replaced (analytics, search or all)",
		Long: `Points every reader of the projection back at the previous generation, the
one the last 'orderstream replay' (or cutover) retired and kept: analytics
switches its stable views (one RENAME TABLE on 18.16, one CREATE OR REPLACE
VIEW per view on current releases), search swaps its read alias
in one _aliases call. The previous generation is current: the projection
daemon kept writing every event to it. The generation rolled back from is
retired and kept current (serve it again with 'orderstream generations
cutover PROJECTION N', or drop it with 'orderstream generations drop
PROJECTION N').

Fails when no previous generation is kept (--keep dropped it, or no
rebuild happened yet).`,
		Example: `  orderstream rollback analytics
  orderstream rollback all`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			names, err := projectionArgs(args[0])
			if err != nil {
				return err
			}
			for _, name := range names {
				p, err := openProjection(g, name, prefix)
				if err != nil {
					return err
				}
				before, _ := p.Generations(cmd.Context())
				n, err := p.Rollback(cmd.Context())
				_ = p.Close()
				if err != nil {
					return fmt.Errorf("rollback of %s: %w", name, err)
				}
				from := ""
				if s := rebuild.Serving(before); s != 0 {
					from = " (was " + strconv.FormatUint(uint64(s), 10) + ", retired)"
				}
				fmt.Fprintf(cmd.OutOrStdout(), "%s: generation %d serving%s\n", name, n, from)
			}
			return nil
		},
	}
	addIndexPrefixFlag(cmd.Flags(), &prefix)
	return cmd
}
