package main

import (
	"context"
	"fmt"
	"strconv"

	"github.com/orderstream/orderstream/internal/rebuild"
	"github.com/spf13/cobra"
)

// newProjectionGenerationsCmd is `orderstream generations`: the generations
// of both read models in one place, and the explicit drop.
func newProjectionGenerationsCmd(g *globals) *cobra.Command {
	var format outputFormat
	var prefix string
	cmd := &cobra.Command{
		Use:   "generations [PROJECTION]",
		Short: "List the generations of the read models (serving, building, retired); drop one or serve a retired one again",
		Long: `Lists each read model's generations: serving (what every reader sees),
building (a rebuild in progress), retired (replaced by a cutover, kept
current for 'orderstream rollback'), detached (search: an index no alias
names any more). 'orderstream generations drop PROJECTION N' deletes a
generation that does not serve; 'orderstream generations cutover PROJECTION N'
serves a retired generation again (say the one a rollback left); 'orderstream
replay --keep N' drops older generations after each cutover.`,
		Example: `  orderstream generations
  orderstream generations analytics --format json
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
			header := []string{"projection", "generation", "state"}
			switch format {
			case formatJSON:
				return writeJSON(cmd.OutOrStdout(), out)
			case formatCSV:
				return writeCSV(cmd.OutOrStdout(), header, rows)
			}
			return writeTable(cmd.OutOrStdout(), header, rows, map[int]bool{1: true})
		},
	}
	addFormatFlag(cmd, &format, formatCSV)
	addIndexPrefixFlag(cmd.PersistentFlags(), &prefix)
	cmd.AddCommand(
		generationCmd(g, &prefix, "drop", "Delete generation N of a read model (its tables or index); never the serving one",
			"  orderstream generations drop analytics 1",
			func(ctx context.Context, p rebuild.Projection, n uint32) (string, error) {
				return fmt.Sprintf("generation %d dropped", n), p.DropGeneration(ctx, n)
			}),
		generationCmd(g, &prefix, "cutover", "Serve retired generation N again (kept current since it retired); the serving one retires",
			"  orderstream generations cutover search 2   # after 'orderstream rollback search' left 2",
			cutoverRetired),
	)
	return cmd
}

// generationCmd builds 'generations VERB PROJECTION N': do runs on the
// projection's adapter and returns what is printed after "<projection>: ".
func generationCmd(g *globals, prefix *string, verb, short, example string, do func(context.Context, rebuild.Projection, uint32) (string, error)) *cobra.Command {
	return &cobra.Command{
		Use:     verb + " PROJECTION N",
		Short:   short,
		Example: example,
		Args:    cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if args[0] != "analytics" && args[0] != "search" {
				return usagef("unknown projection %q: want analytics or search", args[0])
			}
			n, err := strconv.ParseUint(args[1], 10, 32)
			if err != nil || n == 0 {
				return usagef("generation %q: want a number >= 1", args[1])
			}
			p, err := openProjection(g, args[0], *prefix)
			if err != nil {
				return err
			}
			defer p.Close()
			done, err := do(cmd.Context(), p, uint32(n))
			if err != nil {
				return fmt.Errorf("%s %s generation %d: %w", verb, args[0], n, err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s: %s\n", args[0], done)
			return nil
		},
	}
}

// cutoverRetired serves retired generation n of p again. It refuses a
// generation being built (the replay building it cuts it over once it has
// caught up: before that it is partial) and a detached one (no longer
// written, it misses events); the serving one is a no-op.
func cutoverRetired(ctx context.Context, p rebuild.Projection, n uint32) (string, error) {
	gens, err := p.Generations(ctx)
	if err != nil {
		return "", err
	}
	state := ""
	for _, gen := range gens {
		if gen.Number == n {
			state = gen.State
		}
	}
	switch state {
	case rebuild.StateRetired:
	case rebuild.StateServing:
		return fmt.Sprintf("generation %d serves already", n), nil
	case "":
		return "", fmt.Errorf("no such generation (list them with 'orderstream generations %s')", p.Name())
	case rebuild.StateBuilding:
		return "", fmt.Errorf("it is building: the replay that builds it cuts it over once it has caught up; before that it is partial")
	default:
		return "", fmt.Errorf("it is %s: no longer written, it misses events; rebuild with 'orderstream replay %s'", state, p.Name())
	}
	was := rebuild.Serving(gens)
	if err := p.Cutover(ctx, n); err != nil {
		return "", err
	}
	return fmt.Sprintf("generation %d serving (was %d, retired)", n, was), nil
}
