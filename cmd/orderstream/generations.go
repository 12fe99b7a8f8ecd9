package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"

	"github.com/orderstream/orderstream/projections"
	"github.com/spf13/cobra"
)

// generationsFlags are the flags of `orderstream generations` and its verbs.
type generationsFlags struct {
	format outputFormat
	prefix string     // search's --index-prefix
	guard  guardFlags // cutover: --force, --slot, --relay-wait
	group  string     // cutover: the consumer group that filled N
}

// newProjectionGenerationsCmd is `orderstream generations`, the one command
// tree over every read model's generations (readModels): list, create,
// cutover, rollback, drop. --format is persistent: every verb prints its
// result in it.
func newProjectionGenerationsCmd(g *globals) *cobra.Command {
	fl := &generationsFlags{}
	cmd := &cobra.Command{
		Use:   "generations [PROJECTION|all]",
		Short: "List, create, cut over, roll back and drop the generations of the read models",
		Long: `Lists each read model's generations (alone: 'generations list'): serving
(what every reader sees), building (a rebuild in progress), retired
(replaced by a cutover, kept current for a rollback), detached (search: an
index no alias names any more).

  generations list [PROJECTION|all]      the generations, rows and times (--format json)
  generations create PROJECTION [N]      a new empty generation N (default: the next), building
  generations cutover PROJECTION N       serve N (the serving one retires, kept current)
  generations rollback PROJECTION|all    serve again the generation the last cutover replaced
  generations drop PROJECTION N          delete a generation that does not serve

A cutover serves a retired generation again at once (the daemons kept it
current). A building generation is cut over only with --group, the
consumer group that filled it, and only after the checks 'orderstream
replay' makes before its cutover (with --group, any generation is
checked), the committed offsets of --group being the end of what it
applied; failed checks refuse the cutover (exit 1) unless --force.
'orderstream replay --keep N' drops older generations after each cutover.`,
		Example: `  orderstream generations
  orderstream generations list analytics --format json
  orderstream generations create search
  orderstream generations cutover search 3 --group search-fill   # filled by 'consume search --generation 3 --group search-fill'
  orderstream generations rollback analytics
  orderstream generations drop search 1`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error { return runGenerationsList(cmd, g, fl, args) },
	}
	addPersistentFormatFlag(cmd, &fl.format, formatCSV)
	addIndexPrefixFlag(cmd.PersistentFlags(), &fl.prefix)
	list := &cobra.Command{
		Use:   "list [PROJECTION|all]",
		Short: "List the generations of the read models (default all)",
		Args:  cobra.MaximumNArgs(1),
		RunE:  func(cmd *cobra.Command, args []string) error { return runGenerationsList(cmd, g, fl, args) },
	}
	cutover := &cobra.Command{
		Use:   "cutover PROJECTION N",
		Short: "Serve generation N; the serving one retires (kept current); building ones are checked first",
		Long: `Serves generation N of the read model for every reader at once (analytics:
its stable views; search: one _aliases call); the generation serving before
retires and the daemons keep it current for a rollback.

A retired generation is served at once. A building generation is partial
until its replay caught up ('orderstream replay' cuts it over itself): it
is refused unless --group names the consumer group that filled it; then,
as with any generation when --group is given, the cutover is checked
first: every partition's log start offset is 0, and generation N holds
every order of the write side (PostgreSQL orders.version, once the relay
of --slot relayed it) at its version, apart from orders whose next event
lies past the committed offsets of --group (in flight). Failed checks
refuse the cutover (exit 1, nothing switched); --force switches anyway and
logs at WARN what it overrode.`,
		Example: `  orderstream generations cutover search 2   # after 'orderstream generations rollback search' left 2
  orderstream generations cutover analytics 4 --group orderstream-analytics`,
		Args: cobra.ExactArgs(2),
		RunE: generationVerb(g, fl, "cutover", cutoverVerb(g, fl)),
	}
	addGuardFlags(cutover.Flags(), &fl.guard)
	cutover.Flags().StringVar(&fl.group, "group", "", "check N first, with this consumer group's committed offsets as the end of what N applied (required for a building generation)")
	cmd.AddCommand(
		list,
		&cobra.Command{
			Use:   "create PROJECTION [N]",
			Short: "Create generation N (default: the next number), empty and building; the daemons write it from now on",
			Args:  cobra.RangeArgs(1, 2),
			RunE:  func(cmd *cobra.Command, args []string) error { return runCreateGeneration(cmd, g, fl, args) },
		},
		cutover,
		&cobra.Command{
			Use:   "rollback PROJECTION|all",
			Short: "Serve again the generation the last cutover replaced; the serving one retires (kept current)",
			Long: `Points every reader of the read model back at the previous generation, the
one the last 'orderstream replay' (or cutover) retired and kept: analytics
switches its stable views (one RENAME TABLE on 18.16, one CREATE OR REPLACE
VIEW per view on current releases), search swaps its read alias in one
_aliases call. The previous generation is current: the daemons kept writing
every event to it. The generation rolled back from is retired and kept
current (serve it again with 'orderstream generations cutover PROJECTION N',
or drop it with 'orderstream generations drop PROJECTION N').

Fails when no previous generation is kept (--keep dropped it, or no
rebuild happened yet).`,
			Example: `  orderstream generations rollback analytics
  orderstream generations rollback all`,
			Args: cobra.ExactArgs(1),
			RunE: func(cmd *cobra.Command, args []string) error { return runRollback(cmd, g, fl, args[0]) },
		},
		&cobra.Command{
			Use:     "drop PROJECTION N",
			Short:   "Delete generation N of a read model (its tables or index); never the serving one",
			Example: "  orderstream generations drop analytics 1",
			Args:    cobra.ExactArgs(2),
			RunE:    generationVerb(g, fl, "drop", dropGeneration),
		},
	)
	return cmd
}

// generationResult is what a verb of `generations` did to one read model.
type generationResult struct {
	Projection string `json:"projection"`
	Generation uint32 `json:"generation"`         // the generation created, dropped or serving now
	Previous   uint32 `json:"previous,omitempty"` // cutover, rollback: the one serving before (0: none or unchanged)
	Result     string `json:"result"`             // created, dropped, serving, unchanged
	text       string // the line for people, after "<projection>: "
}

// printGenerationResults writes rs as JSON (an array) or one line each.
func printGenerationResults(w io.Writer, format outputFormat, rs []generationResult) error {
	if format == formatJSON {
		return writeJSON(w, rs)
	}
	for _, r := range rs {
		if _, err := fmt.Fprintf(w, "%s: %s\n", r.Projection, r.text); err != nil {
			return err
		}
	}
	return nil
}

// generationVerb builds the RunE of 'generations VERB PROJECTION N': do runs
// on the read model and says what it did.
func generationVerb(g *globals, fl *generationsFlags, verb string, do func(context.Context, projections.ReadModel, uint32) (generationResult, error)) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		if _, err := lookupReadModel(args[0]); err != nil {
			return err
		}
		n, err := parseGeneration("generation", args[1])
		if err != nil {
			return err
		}
		p, err := openProjection(g, args[0], fl.prefix)
		if err != nil {
			return err
		}
		defer p.Close()
		r, err := do(cmd.Context(), p, n)
		if err != nil {
			return generationError(fmt.Errorf("%s %s generation %d: %w", verb, args[0], n, err), args[0])
		}
		r.Projection = args[0]
		return printGenerationResults(cmd.OutOrStdout(), fl.format, []generationResult{r})
	}
}

// generationError adds to err the command that helps with it.
func generationError(err error, name string) error {
	switch {
	case errors.Is(err, projections.ErrNoGeneration):
		return fmt.Errorf("%w (list them with 'orderstream generations list %s')", err, name)
	case errors.Is(err, projections.ErrServing):
		return fmt.Errorf("%w (serve another first: 'orderstream generations cutover %s N' or 'orderstream generations rollback %s')", err, name, name)
	case errors.Is(err, projections.ErrNoPrevious):
		return fmt.Errorf("%w (list the generations kept with 'orderstream generations list %s')", err, name)
	case errors.Is(err, projections.ErrExists):
		return fmt.Errorf("%w (omit N to take the next number)", err)
	}
	return err
}

// runGenerationsList prints the generations of the read models named by
// args (default all).
func runGenerationsList(cmd *cobra.Command, g *globals, fl *generationsFlags, args []string) error {
	arg := "all"
	if len(args) == 1 {
		arg = args[0]
	}
	names, err := projectionArgs(arg)
	if err != nil {
		return err
	}
	type entry struct {
		Projection  string                   `json:"projection"`
		Generations []projections.Generation `json:"generations"`
	}
	var out []entry
	var rows [][]string
	for _, name := range names {
		p, err := openProjection(g, name, fl.prefix)
		if err != nil {
			return err
		}
		gens, err := p.Generations(cmd.Context())
		_ = p.Close() // read only: nothing to lose
		if err != nil {
			return fmt.Errorf("%s generations: %w", name, err)
		}
		if gens == nil {
			gens = []projections.Generation{}
		}
		out = append(out, entry{name, gens})
		for _, gen := range gens {
			rows = append(rows, []string{name, strconv.FormatUint(uint64(gen.Number), 10), gen.State})
		}
	}
	header := []string{"projection", "generation", "state"}
	switch fl.format {
	case formatJSON:
		return writeJSON(cmd.OutOrStdout(), out)
	case formatCSV:
		return writeCSV(cmd.OutOrStdout(), header, rows)
	}
	return writeTable(cmd.OutOrStdout(), header, rows, map[int]bool{1: true})
}

// runCreateGeneration creates generation args[1] (default the next) of
// read model args[0].
func runCreateGeneration(cmd *cobra.Command, g *globals, fl *generationsFlags, args []string) error {
	name := args[0]
	if _, err := lookupReadModel(name); err != nil {
		return err
	}
	var n uint32
	if len(args) == 2 {
		var err error
		if n, err = parseGeneration("generation", args[1]); err != nil {
			return err
		}
	}
	p, err := openProjection(g, name, fl.prefix)
	if err != nil {
		return err
	}
	defer p.Close()
	ctx := cmd.Context()
	if n == 0 {
		if n, err = p.NextGeneration(ctx); err != nil {
			return fmt.Errorf("create %s generation: %w", name, err)
		}
	}
	if err := p.CreateGeneration(ctx, n); err != nil {
		return generationError(fmt.Errorf("create %s generation %d: %w", name, n, err), name)
	}
	return printGenerationResults(cmd.OutOrStdout(), fl.format, []generationResult{{
		Projection: name, Generation: n, Result: "created", text: fmt.Sprintf("generation %d created (building)", n)}})
}

// runRollback rolls back the read models named by arg ("all": each).
func runRollback(cmd *cobra.Command, g *globals, fl *generationsFlags, arg string) error {
	names, err := projectionArgs(arg)
	if err != nil {
		return err
	}
	var rs []generationResult
	for _, name := range names {
		p, err := openProjection(g, name, fl.prefix)
		if err != nil {
			return err
		}
		before, _ := p.Generations(cmd.Context()) // only to name the one rolled back from
		n, err := p.Rollback(cmd.Context())
		_ = p.Close()
		if err != nil {
			return generationError(fmt.Errorf("rollback of %s: %w", name, err), name)
		}
		r := generationResult{Projection: name, Generation: n, Previous: projections.Serving(before), Result: "serving",
			text: fmt.Sprintf("generation %d serving", n)}
		if r.Previous != 0 {
			r.text += fmt.Sprintf(" (was %d, retired)", r.Previous)
		}
		rs = append(rs, r)
	}
	return printGenerationResults(cmd.OutOrStdout(), fl.format, rs)
}

// dropGeneration is the verb drop.
func dropGeneration(ctx context.Context, p projections.ReadModel, n uint32) (generationResult, error) {
	if err := p.DropGeneration(ctx, n); err != nil {
		return generationResult{}, err
	}
	return generationResult{Generation: n, Result: "dropped", text: fmt.Sprintf("generation %d dropped", n)}, nil
}

// cutoverVerb is the verb cutover with fl's --group and guard flags.
func cutoverVerb(g *globals, fl *generationsFlags) func(context.Context, projections.ReadModel, uint32) (generationResult, error) {
	return func(ctx context.Context, p projections.ReadModel, n uint32) (generationResult, error) {
		return cutoverGeneration(ctx, g, p, n, fl.group, fl.guard)
	}
}

// cutoverGeneration serves generation n of p. A retired generation is
// served at once, the daemons kept it current; a building one (partial
// until its replay caught up) only after the checks of a cutover
// (checkedCutover) with group's offsets, and so is any generation when
// group is given; a detached one is refused (no longer written, it misses
// events); the serving one is left as it is.
func cutoverGeneration(ctx context.Context, g *globals, p projections.ReadModel, n uint32, group string, gf guardFlags) (generationResult, error) {
	gens, err := p.Generations(ctx)
	if err != nil {
		return generationResult{}, err
	}
	gen, ok := projections.Find(gens, n)
	if !ok {
		return generationResult{}, projections.ErrNoGeneration
	}
	was := projections.Serving(gens)
	switch {
	case gen.State == projections.StateServing:
		return generationResult{Generation: n, Result: "unchanged", text: fmt.Sprintf("generation %d serves already", n)}, nil
	case group != "":
		if err := checkedCutover(ctx, g, p, group, n, gf); err != nil {
			return generationResult{}, err
		}
	case gen.State == projections.StateRetired:
		if err := p.Cutover(ctx, n); err != nil {
			return generationResult{}, err
		}
	case gen.State == projections.StateBuilding:
		return generationResult{}, fmt.Errorf("it is building: the replay that builds it cuts it over once it has caught up; before that it is partial (to check it and cut it over now, name the consumer group that filled it: --group GROUP)")
	default:
		return generationResult{}, fmt.Errorf("it is %s: no longer written, it misses events; rebuild with 'orderstream replay %s'", gen.State, p.Name())
	}
	r := generationResult{Generation: n, Previous: was, Result: "serving", text: fmt.Sprintf("generation %d serving", n)}
	if was != 0 {
		r.text += fmt.Sprintf(" (was %d, retired)", was)
	}
	return r, nil
}

// deprecatedAlias hides cmd, an earlier spelling of `orderstream <use>`,
// and makes it print a one-line deprecation notice on stderr (never on
// stdout, which a script parses) before it runs.
func deprecatedAlias(cmd *cobra.Command, use string) *cobra.Command {
	cmd.Hidden = true
	run := cmd.RunE
	cmd.RunE = func(c *cobra.Command, args []string) error {
		fmt.Fprintf(c.ErrOrStderr(), "'%s' is deprecated: use 'orderstream %s'\n", c.CommandPath(), use)
		return run(c, args)
	}
	return cmd
}

// legacyGenerationCmd is verb (list, create, cutover, rollback, drop) of
// `generations` on read model name under an earlier spelling, use (e.g.
// "drop-generation N" of `search admin`): a hidden, deprecated alias that
// runs the verb of `generations` (its output, its rules). prefix is the
// search index prefix flag of the earlier tree (nil: none). The alias of
// cutover checks every generation before serving it, as the earlier
// verbs did, with --group defaulting to the daemon's group.
func legacyGenerationCmd(g *globals, name string, prefix *string, verb, use string) *cobra.Command {
	fl := &generationsFlags{}
	withPrefix := func(run func(*cobra.Command, []string) error) func(*cobra.Command, []string) error {
		return func(cmd *cobra.Command, args []string) error {
			if prefix != nil {
				fl.prefix = *prefix
			}
			return run(cmd, args)
		}
	}
	cmd := &cobra.Command{Use: use, Short: "Deprecated: 'orderstream generations " + verb + " " + name + "'"}
	switch verb {
	case "list":
		cmd.Args = cobra.NoArgs
		cmd.RunE = withPrefix(func(cmd *cobra.Command, _ []string) error { return runGenerationsList(cmd, g, fl, []string{name}) })
		addFormatFlag(cmd, &fl.format, formatCSV)
		return deprecatedAlias(cmd, "generations list "+name)
	case "create":
		cmd.Args = cobra.MaximumNArgs(1)
		cmd.RunE = withPrefix(func(cmd *cobra.Command, args []string) error {
			return runCreateGeneration(cmd, g, fl, append([]string{name}, args...))
		})
		return deprecatedAlias(cmd, "generations create "+name+" [N]")
	case "cutover":
		cmd.Args = cobra.ExactArgs(1)
		run := generationVerb(g, fl, "cutover", cutoverVerb(g, fl))
		cmd.RunE = withPrefix(func(cmd *cobra.Command, args []string) error { return run(cmd, []string{name, args[0]}) })
		addGuardFlags(cmd.Flags(), &fl.guard)
		cmd.Flags().StringVar(&fl.group, "group", "orderstream-"+name, "consumer group that fills generation N (the daemon's): events past its committed offsets count as in flight")
		return deprecatedAlias(cmd, "generations cutover "+name+" N --group GROUP")
	case "rollback":
		cmd.Args = cobra.NoArgs
		cmd.RunE = withPrefix(func(cmd *cobra.Command, _ []string) error { return runRollback(cmd, g, fl, name) })
		return deprecatedAlias(cmd, "generations rollback "+name)
	case "drop":
		cmd.Args = cobra.ExactArgs(1)
		run := generationVerb(g, fl, "drop", dropGeneration)
		cmd.RunE = withPrefix(func(cmd *cobra.Command, args []string) error { return run(cmd, []string{name, args[0]}) })
		return deprecatedAlias(cmd, "generations drop "+name+" N")
	}
	panic("legacyGenerationCmd: unknown verb " + verb) // a programming error: the verbs are literals
}
