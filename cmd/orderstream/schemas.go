package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"strings"
	"testing/fstest"
	"text/tabwriter"

	"github.com/orderstream/orderstream/schemas"
	"github.com/spf13/cobra"
)

// newSchemasCmd is `orderstream schemas`: the event contracts this binary
// embeds, and the compatibility gate against a previous release.
func newSchemasCmd(_ *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "schemas",
		Short: "List, show and check the event contracts (JSON Schema) this binary reads and writes",
		Args:  cobra.NoArgs,
	}
	cmd.AddCommand(&cobra.Command{
		Use:   "list",
		Short: "List every event type and version this binary knows, with its upcaster",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return listSchemas(cmd.OutOrStdout())
		},
	})
	var version int
	show := &cobra.Command{
		Use:   "show TYPE",
		Short: "Print the JSON Schema of an event type (or envelope, defs) at a version",
		Example: `  orderstream schemas show order.placed
  orderstream schemas show order.placed --version 1`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return showSchema(cmd.OutOrStdout(), args[0], version)
		},
	}
	show.Flags().IntVar(&version, "version", schemas.CurrentVersion, "schema version, 1 to the newest")
	cmd.AddCommand(show)
	var against string
	check := &cobra.Command{
		Use:   "check --against DIR|GIT-REF",
		Short: "Compare the embedded schemas with a previous release's; exit 1 on a change that breaks a reader",
		Long: `Compares the schemas this binary embeds with a previous set: a directory holding
v1/, v2/ … (e.g. schemas/testdata/release-1, the previous release's set, checked
in), or a git commit, tag or branch of this repository (its schemas/ directory,
read with git show; the ref must be in the clone: fetch it first in a shallow one).

It fails (exit 1) on a change that breaks a reader, naming event, version, field
and rule:
  version-immutable   a published version's schema changed beyond annotations
                      (older readers decode strictly, its events are in the topics)
  version-kept        a published version or event type is gone
  upcaster-required   a version without an upcaster to the next one
  version-complete    versions not 1..N, N not the Go types' version, or a type
                      missing from a newer version
The changes between consecutive versions are listed for information.`,
		Example: `  orderstream schemas check --against schemas/testdata/release-1
  orderstream schemas check --against v1.0.0`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if against == "" {
				return usagef("schemas check: --against is required (a directory of v1/, v2/ … or a git ref)")
			}
			prev, err := previousSchemas(against)
			if err != nil {
				return err
			}
			return checkSchemas(cmd.OutOrStdout(), against, prev)
		},
	}
	check.Flags().StringVar(&against, "against", "", "the previous release's schemas: a directory of v1/, v2/ … or a git ref of this repository")
	cmd.AddCommand(check)
	return cmd
}

func listSchemas(w io.Writer) error {
	up := schemas.NewUpcasters()
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TYPE\tVERSION\tFILE\tREAD AS")
	for v := schemas.OldestVersion; v <= schemas.CurrentVersion; v++ {
		entries, err := fs.ReadDir(schemas.Files(), fmt.Sprintf("v%d", v))
		if err != nil {
			return fmt.Errorf("embedded schemas v%d: %w", v, err)
		}
		for _, e := range entries {
			typ := strings.TrimSuffix(e.Name(), ".json")
			if !strings.HasPrefix(typ, "order.") {
				continue
			}
			readAs := "itself (newest)"
			if v < schemas.CurrentVersion {
				readAs = fmt.Sprintf("v%d, upcast", schemas.CurrentVersion)
				if !up.Has(typ, v) {
					readAs = "NO UPCASTER"
				}
			}
			fmt.Fprintf(tw, "%s\t%d\tschemas/v%d/%s\t%s\n", typ, v, v, e.Name(), readAs)
		}
	}
	return tw.Flush()
}

func showSchema(w io.Writer, name string, version int) error {
	if version < schemas.OldestVersion || version > schemas.CurrentVersion {
		return usagef("--version %d: want %d to %d", version, schemas.OldestVersion, schemas.CurrentVersion)
	}
	b, err := fs.ReadFile(schemas.Files(), fmt.Sprintf("v%d/%s.json", version, name))
	if errors.Is(err, fs.ErrNotExist) {
		return usagef("schemas show %s: no such schema in v%d (see 'orderstream schemas list'; envelope and defs are shown too)", name, version)
	}
	if err != nil {
		return err
	}
	_, err = w.Write(b)
	return err
}

// schemasFailed is the exit-1 error of a check that found problems (they
// were printed).
type schemasFailed struct{ n int }

func (e *schemasFailed) Error() string {
	return fmt.Sprintf("schemas check: %d problem(s); see ARCHITECTURE.md, \"Changing an event\"", e.n)
}

func checkSchemas(w io.Writer, against string, prev fs.FS) error {
	rep, err := schemas.CheckCompatibility(prev, schemas.Files(), schemas.NewUpcasters())
	if err != nil {
		return fmt.Errorf("schemas check against %s: %w", against, err)
	}
	for _, c := range rep.Changes {
		fmt.Fprintf(w, "change   %s\n", c)
	}
	for _, p := range rep.Problems {
		fmt.Fprintf(w, "PROBLEM  %s\n", p)
	}
	if len(rep.Problems) > 0 {
		return &schemasFailed{n: len(rep.Problems)}
	}
	fmt.Fprintf(w, "ok: schemas v%d..v%d compatible with %s\n", schemas.OldestVersion, schemas.CurrentVersion, against)
	return nil
}

// previousSchemas opens against as a directory when it is one, else reads
// schemas/v*/*.json of that git ref from the repository of the working
// directory.
func previousSchemas(against string) (fs.FS, error) {
	if st, err := os.Stat(against); err == nil && st.IsDir() {
		return os.DirFS(against), nil
	}
	return gitSchemas(against)
}

// gitSchemas reads the schema files of ref (git ls-tree, git show) into a
// file system laid out as v<N>/<name>.json.
func gitSchemas(ref string) (fs.FS, error) {
	if strings.HasPrefix(ref, "-") {
		return nil, usagef("--against %q: not a directory nor a git ref", ref)
	}
	out, err := git("rev-parse", "--verify", "--quiet", ref+"^{commit}")
	if err != nil {
		return nil, usagef("--against %q: not a directory, nor a commit of this repository (%v); in a shallow clone, fetch the ref first (git fetch --depth=1 origin %s)", ref, err, ref)
	}
	commit := strings.TrimSpace(out)
	list, err := git("ls-tree", "-r", "--name-only", commit, "--", "schemas/")
	if err != nil {
		return nil, fmt.Errorf("--against %s: list schemas/: %w", ref, err)
	}
	m := fstest.MapFS{}
	for _, p := range strings.Fields(list) {
		rel := strings.TrimPrefix(p, "schemas/")
		dir, _ := path.Split(rel)
		if path.Ext(rel) != ".json" || strings.Count(rel, "/") != 1 || !strings.HasPrefix(dir, "v") {
			continue // only schemas/v<N>/*.json; testdata and the like are not the contract
		}
		b, err := git("show", commit+":"+p)
		if err != nil {
			return nil, fmt.Errorf("--against %s: read %s: %w", ref, p, err)
		}
		m[rel] = &fstest.MapFile{Data: []byte(b)}
	}
	if len(m) == 0 {
		return nil, usagef("--against %s: no schemas/v<N>/*.json at that commit", ref)
	}
	return m, nil
}

func git(args ...string) (string, error) {
	var stdout, stderr bytes.Buffer
	c := exec.Command("git", args...)
	c.Stdout, c.Stderr = &stdout, &stderr
	if err := c.Run(); err != nil {
		return "", fmt.Errorf("git %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return stdout.String(), nil
}
