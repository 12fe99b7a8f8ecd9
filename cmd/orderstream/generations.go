package main

import (
	"fmt"
	"strconv"

	"github.com/orderstream/orderstream/internal/rebuild"
	"github.com/spf13/cobra"
)

// newProjectionGenerationsCmd is `orderstream generations`: the generations
// of both read models in one place, and the explicit drop.
func newProjectionGenerationsCmd(g *globals) *cobra.Command {
	var asJSON bool
	var prefix string
	cmd := &cobra.Command{
		Use:   "generations [PROJECTION]",
		Short: "List the generations of the read models (serving, building, retired); drop one",
		Long: `Lists each read model's generations: serving (what every reader sees),
building (a rebuild in progress), retired (replaced by a cutover, kept
current for 'orderstream rollback'), detached (search: an index no alias
names any more). 'orderstream generations drop PROJECTION N' deletes a
generation that does not serve; 'orderstream replay --keep N' drops older
generations after each cutover.`,
		Example: `  orderstream generations
  orderstream generations analytics --json
  orderstream generations drop search 1`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			arg := "all"
			if len(args) == 1 {
				arg = args[0]
			}
			names, err := projectionArgs(arg)
			if err != nil {
				return err
			}
			type entry struct {
				Projection  string               `json:"projection"`
				Generations []rebuild.Generation `json:"generations"`
			}
			var out []entry
			var rows [][]string
			for _, name := range names {
				p, err := openProjection(g, name, prefix)
				if err != nil {
					return err
				}
				gens, err := p.Generations(cmd.Context())
				_ = p.Close()
				if err != nil {
					return fmt.Errorf("%s generations: %w", name, err)
				}
				out = append(out, entry{name, gens})
				for _, gen := range gens {
					rows = append(rows, []string{name, strconv.FormatUint(uint64(gen.Number), 10), gen.State})
				}
			}
			if asJSON {
				return writeJSON(cmd.OutOrStdout(), out)
			}
			return writeTable(cmd.OutOrStdout(), []string{"projection", "generation", "state"}, rows, map[int]bool{1: true})
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print as JSON")
	addIndexPrefixFlag(cmd.PersistentFlags(), &prefix)
	cmd.AddCommand(&cobra.Command{
		Use:     "drop PROJECTION N",
		Short:   "Delete generation N of a read model (its tables or index); never the serving one",
		Example: "  orderstream generations drop analytics 1",
		Args:    cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if args[0] != "analytics" && args[0] != "search" {
				return usagef("unknown projection %q: want analytics or search", args[0])
			}
			n, err := strconv.ParseUint(args[1], 10, 32)
			if err != nil || n == 0 {
				return usagef("generation %q: want a number >= 1", args[1])
			}
			p, err := openProjection(g, args[0], prefix)
			if err != nil {
				return err
			}
			defer p.Close()
			if err := p.DropGeneration(cmd.Context(), uint32(n)); err != nil {
				return fmt.Errorf("drop %s generation %d: %w", args[0], n, err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s: generation %d dropped\n", args[0], n)
			return nil
		},
	})
	return cmd
}
