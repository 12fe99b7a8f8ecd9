package main

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// outputFormat is the value of --format, the one output flag of every
// command that prints results: table (the default: an aligned table, or a
// report for people where the result is not one table), json, and csv where
// the result is one table.
type outputFormat string

const (
	formatTable outputFormat = "table"
	formatJSON  outputFormat = "json"
	formatCSV   outputFormat = "csv"
)

// formatValue is the pflag.Value of --format: it refuses, at parse time and
// naming the flag, a format the command does not print, and hands the
// accepted one to set.
type formatValue struct {
	cur     outputFormat
	allowed []outputFormat
	set     func(outputFormat)
}

func (v *formatValue) String() string { return string(v.cur) }
func (v *formatValue) Type() string   { return "format" }

func (v *formatValue) Set(s string) error {
	f := outputFormat(s)
	if !slices.Contains(v.allowed, f) {
		return fmt.Errorf("want %s", v.want())
	}
	v.cur = f
	v.set(f)
	return nil
}

func (v *formatValue) want() string {
	s := make([]string, len(v.allowed))
	for i, f := range v.allowed {
		s[i] = string(f)
	}
	if len(s) == 1 {
		return s[0]
	}
	return strings.Join(s[:len(s)-1], ", ") + " or " + s[len(s)-1]
}

var (
	_ pflag.Value = (*formatValue)(nil)
	_ pflag.Value = jsonAlias{}
)

// jsonAlias is the deprecated boolean --json: --json (or --json=true) sets
// --format json, --json=false sets it back to table.
type jsonAlias struct{ format *formatValue }

func (a jsonAlias) String() string   { return strconv.FormatBool(a.format.cur == formatJSON) }
func (a jsonAlias) Type() string     { return "bool" }
func (a jsonAlias) IsBoolFlag() bool { return true }

func (a jsonAlias) Set(s string) error {
	b, err := strconv.ParseBool(s)
	if err != nil {
		return err
	}
	if b {
		return a.format.Set(string(formatJSON))
	}
	return a.format.Set(string(formatTable))
}

// addFormatFlag registers --format on cmd, storing the format in *p
// (default table), accepting table, json and the extra formats given (csv
// where the result is one table). It also registers --json, the flag several
// commands took before, as a deprecated alias of --format json so that
// scripts keep working: hidden from help, it prints a deprecation notice on
// the command's stderr (never on stdout, which a script parses).
func addFormatFlag(cmd *cobra.Command, p *outputFormat, extra ...outputFormat) {
	*p = formatTable
	addFormatFlagFunc(cmd, func(v outputFormat) { *p = v }, extra...)
}

// addJSONFormatFlag is addFormatFlag (table or json) for a command whose
// code keeps a bool: *asJSON is true with --format json.
func addJSONFormatFlag(cmd *cobra.Command, asJSON *bool) {
	*asJSON = false
	addFormatFlagFunc(cmd, func(v outputFormat) { *asJSON = v == formatJSON })
}

// addPersistentFormatFlag is addFormatFlag for a command tree: the flag is
// cmd's and every subcommand's.
func addPersistentFormatFlag(cmd *cobra.Command, p *outputFormat, extra ...outputFormat) {
	*p = formatTable
	addFormatFlagTo(cmd, cmd.PersistentFlags(), func(v outputFormat) { *p = v }, extra...)
}

func addFormatFlagFunc(cmd *cobra.Command, set func(outputFormat), extra ...outputFormat) {
	addFormatFlagTo(cmd, cmd.Flags(), set, extra...)
}

func addFormatFlagTo(cmd *cobra.Command, f *pflag.FlagSet, set func(outputFormat), extra ...outputFormat) {
	v := &formatValue{cur: formatTable, allowed: append([]outputFormat{formatTable, formatJSON}, extra...), set: set}
	f.Var(v, "format", "output format: "+v.want())
	f.Var(jsonAlias{v}, "json", "print as JSON (deprecated: use --format json)")
	f.Lookup("json").NoOptDefVal = "true"
	if err := f.MarkDeprecated("json", "use --format json"); err != nil {
		panic(err) // the flag was registered on the line above
	}
	// pflag writes the deprecation notice to the flag set's output; cobra
	// would copy it to OutOrStderr, which is stdout once SetOut was called.
	f.SetOutput(stderrOf{cmd})
}

// stderrOf writes to the command's stderr as set when the write happens
// (SetErr may come after the flags were registered).
type stderrOf struct{ cmd *cobra.Command }

func (w stderrOf) Write(p []byte) (int, error) { return w.cmd.ErrOrStderr().Write(p) }
