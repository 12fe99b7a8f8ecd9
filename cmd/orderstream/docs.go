package main

import (
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// newDocsCmd is the hidden `orderstream docs`, which prints reference text
// generated from the command tree.
func newDocsCmd(_ *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "docs",
		Short: "Print reference documentation generated from the commands",
		Args:  cobra.NoArgs,
	}
	cmd.AddCommand(&cobra.Command{
		Use:   "config",
		Short: "Print one Markdown table of every setting: flag, environment variable, YAML key, default, commands",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return writeConfigTable(cmd.OutOrStdout(), cmd.Root())
		},
	})
	return cmd
}

// setting is one row of the configuration table: a flag name with one
// default and description, and the commands that have it.
type setting struct {
	name, def, usage string
	commands         []string
	global           bool
}

// writeConfigTable prints every flag of every visible command of root as
// one Markdown table. Flags of the same name, default and description on
// several commands share a row.
func writeConfigTable(w io.Writer, root *cobra.Command) error {
	rows := map[string]*setting{}
	add := func(cmdPath string, fl *pflag.Flag, global bool) {
		if fl.Hidden || fl.Name == "help" {
			return
		}
		key := fl.Name + "\x00" + fl.DefValue + "\x00" + fl.Usage
		s, ok := rows[key]
		if !ok {
			s = &setting{name: fl.Name, def: fl.DefValue, usage: fl.Usage, global: global}
			rows[key] = s
		}
		if !global {
			s.commands = append(s.commands, cmdPath)
		}
	}
	root.PersistentFlags().VisitAll(func(fl *pflag.Flag) { add("", fl, true) })
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		for _, sub := range c.Commands() {
			if sub.Hidden || sub.Name() == "help" || sub.Name() == "completion" {
				continue
			}
			path := strings.TrimPrefix(sub.CommandPath(), root.Name()+" ")
			visit := func(fl *pflag.Flag) {
				if isSetting(sub, fl) {
					add(path, fl, false)
				}
			}
			sub.LocalNonPersistentFlags().VisitAll(visit)
			sub.PersistentFlags().VisitAll(visit)
			walk(sub)
		}
	}
	walk(root)

	list := make([]*setting, 0, len(rows))
	for _, s := range rows {
		list = append(list, s)
	}
	sort.Slice(list, func(i, j int) bool {
		a, b := list[i], list[j]
		if a.global != b.global {
			return a.global
		}
		if a.name != b.name {
			return a.name < b.name
		}
		return strings.Join(a.commands, ",") < strings.Join(b.commands, ",")
	})
	var b strings.Builder
	b.WriteString("| flag | environment | YAML key | default | commands | description |\n")
	b.WriteString("|---|---|---|---|---|---|\n")
	for _, s := range list {
		cmds := "all"
		if !s.global {
			sort.Strings(s.commands)
			cmds = strings.Join(s.commands, ", ")
		}
		def := s.def
		if def == "" || def == "[]" {
			def = "—"
		} else {
			def = "`" + def + "`"
		}
		fmt.Fprintf(&b, "| `--%s` | `%s` | `%s` | %s | %s | %s |\n", s.name, envName(s.name), s.name, cell(def), cell(cmds), cell(s.usage))
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// envName is the environment variable bindConfig reads for a flag.
func envName(flag string) string {
	return "ORDERSTREAM_" + strings.ToUpper(strings.ReplaceAll(flag, "-", "_"))
}

// cell escapes what Markdown would take for table separators or HTML tags.
func cell(s string) string {
	return strings.NewReplacer("|", `\|`, "\n", " ", "<", "&lt;", ">", "&gt;").Replace(s)
}
