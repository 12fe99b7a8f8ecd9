package main

import (
	"fmt"
	"log/slog"
	"os"
	"strings"

	"github.com/orderstream/orderstream/internal/connect"
	"github.com/orderstream/orderstream/internal/logging"
	"github.com/orderstream/orderstream/schemas"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"gopkg.in/yaml.v3"
)

// globals are the settings every subcommand shares. Each is a persistent flag
// of the root command, also settable as ORDERSTREAM_<FLAG> (upper case, '-'
// → '_') or as a key of the YAML file given by --config; a flag on the command
// line wins over the environment, which wins over the file.
type globals struct {
	configFile   string
	logFormat    string
	logLevel     string
	topic        string
	searchEngine string
	// conn is how every command reaches PostgreSQL, Kafka, ClickHouse
	// and the search engine (internal/connect; connect.go builds clients).
	conn          connect.Settings
	kafka         kafkaConn // built from conn.Kafka on first use (connect.go)
	eventVersion  int
	chCluster     string // --clickhouse-cluster
	searchReplica int    // --search-replicas

	log *slog.Logger
}

func newRootCmd() *cobra.Command {
	g := &globals{}
	root := &cobra.Command{
		Use:           "orderstream",
		Short:         "Event streaming for orders: outbox, CDC relay to Kafka, idempotent read models",
		SilenceUsage:  true,
		SilenceErrors: false,
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			if err := bindConfig(cmd, g.configFile); err != nil {
				return err
			}
			log, err := logging.New(os.Stderr, g.logFormat, g.logLevel)
			if err != nil {
				return usagef("%v", err)
			}
			g.log = log
			return setupTracing(cmd, log)
		},
	}
	root.SetFlagErrorFunc(func(cmd *cobra.Command, err error) error {
		return usagef("%v\nRun '%s --help' for usage.", err, cmd.CommandPath())
	})
	f := root.PersistentFlags()
	f.StringVar(&g.configFile, "config", "", "YAML file of settings (keys are flag names); env ORDERSTREAM_CONFIG")
	f.StringVar(&g.logFormat, "log-format", "auto", "log format: json, text, or auto (text on a terminal, else JSON)")
	f.StringVar(&g.logLevel, "log-level", "info", "log level: debug, info, warn, error")
	g.conn.AddFlags(f)
	f.StringVar(&g.topic, "topic", "orders", "Kafka topic of order events")
	f.StringVar(&g.searchEngine, "search-engine", "opensearch", "search engine: opensearch or elasticsearch")
	f.IntVar(&g.eventVersion, "event-version", schemas.CurrentVersion, "schema version of the events the write side emits (1 or 2): keep 1 until every consumer runs a release that reads 2")
	f.StringVar(&g.chCluster, "clickhouse-cluster", "", "ClickHouse cluster (remote_servers name) of the read model: replicated tables sharded by order_id, DDL ON CLUSTER; empty: one server")
	f.IntVar(&g.searchReplica, "search-replicas", 0, "number_of_replicas of every new search index generation (1 on a cluster of two nodes or more: a node's loss loses no document)")

	root.AddCommand(
		newMigrateCmd(g),
		newImportCmd(g),
		newOrdersCmd(g),
		newLoadCmd(g),
		newRelayCmd(g),
		newTopicCmd(g),
		newConsumeCmd(g),
		newDLQCmd(g),
		newAnalyticsCmd(g),
		newSearchCmd(g),
		newAPICmd(g),
		newReplayCmd(g),
		newRollbackCmd(g),
		newStatusCmd(g),
		newProjectionGenerationsCmd(g),
		newVerifyCmd(g),
		newDocsCmd(g),
		newHealthcheckCmd(g),
		newDevCmd(g),
		newSchemasCmd(g),
	)
	strictArgs(root)
	addHints(root)
	explainErrors(root)
	return root
}

// strictArgs makes every argument mistake a usage error (exit 2): a wrong
// number of arguments, and an unknown subcommand — which cobra would
// otherwise answer with the parent's help and exit 0.
func strictArgs(c *cobra.Command) {
	for _, sub := range c.Commands() {
		strictArgs(sub)
	}
	if c.HasSubCommands() && !c.Runnable() {
		c.Args = func(cmd *cobra.Command, args []string) error {
			if len(args) > 0 {
				return fmt.Errorf("unknown command %q for %q", args[0], cmd.CommandPath())
			}
			return nil
		}
		c.RunE = func(cmd *cobra.Command, _ []string) error { return cmd.Help() }
	}
	if c.Args == nil {
		return
	}
	validate := c.Args
	c.Args = func(cmd *cobra.Command, args []string) error {
		if err := validate(cmd, args); err != nil {
			return usagef("%v\nRun '%s --help' for usage.", err, cmd.CommandPath())
		}
		return nil
	}
}

// daemonCommands are the commands whose own flags are settings as well:
// they also come from the environment and the YAML file. The flags of the
// other commands (queries, import, replay …) are per-invocation arguments and
// come from the command line only, so that a setting meant for one command
// (say ORDERSTREAM_FROM) never changes what another one answers.
var daemonCommands = map[string]bool{"relay": true, "consume": true, "api": true, "dev": true}

// isSetting reports whether fl, a flag of cmd, is also read from the
// environment and the YAML file: the root's persistent flags, and the flags
// of the daemon commands.
func isSetting(cmd *cobra.Command, fl *pflag.Flag) bool {
	if cmd.Root().PersistentFlags().Lookup(fl.Name) == fl {
		return true
	}
	// The daemon's own flags only: those of its subcommands (`relay parked`)
	// are per-invocation arguments.
	return cmd.HasParent() && cmd.Parent() == cmd.Root() && daemonCommands[cmd.Name()]
}

// bindConfig fills every setting of cmd that was not set on the command
// line from ORDERSTREAM_<NAME> (an empty variable counts as unset), then
// from the YAML file.
func bindConfig(cmd *cobra.Command, file string) error {
	if file == "" {
		file = os.Getenv("ORDERSTREAM_CONFIG")
	}
	fileVals := map[string]*yaml.Node{}
	if file != "" {
		b, err := os.ReadFile(file)
		if err != nil {
			return usagef("--config: %v", err)
		}
		if fileVals, err = settingsNodes(b); err != nil {
			return usagef("--config %s: not a YAML map of setting names to values: %v", file, err)
		}
	}
	var errs []string
	cmd.Flags().VisitAll(func(fl *pflag.Flag) {
		if fl.Changed || fl.Name == "help" || fl.Name == "config" || !isSetting(cmd, fl) {
			return
		}
		env := "ORDERSTREAM_" + strings.ToUpper(strings.ReplaceAll(fl.Name, "-", "_"))
		val, ok := os.LookupEnv(env)
		src := env
		if !ok || val == "" {
			v, inFile := fileVals[fl.Name]
			if !inFile {
				return
			}
			src = file + ": " + fl.Name
			_, list := fl.Value.(pflag.SliceValue)
			var present bool
			if val, present, ok = yamlString(v, list); !present {
				errs = append(errs, fmt.Sprintf("%s: no value (write \"\" for an empty one, or leave the key out)", src))
				return
			}
		}
		if !ok {
			errs = append(errs, fmt.Sprintf("%s: not a valid %s value (want %s)", src, fl.Name, fl.Value.Type()))
		} else if err := fl.Value.Set(val); err != nil {
			// Neither the value nor the parser's error (which quotes it) is
			// shown: a secret put in the wrong variable must not be printed.
			errs = append(errs, fmt.Sprintf("%s: not a valid %s value (want %s)", src, fl.Name, fl.Value.Type()))
		}
	})
	known := map[string]bool{}
	allSettings(cmd.Root(), known)
	for k := range fileVals {
		if !known[k] {
			errs = append(errs, fmt.Sprintf("%s: unknown setting %q (settings are the global flags and those of %s; see 'orderstream docs config')", file, k, "relay, consume, api and dev"))
		}
	}
	if len(errs) > 0 {
		return usagef("configuration:\n  %s", strings.Join(errs, "\n  "))
	}
	return nil
}

// settingsNodes decodes a YAML document that maps setting names to values,
// keeping each value's node: a value reaches its setting as written in the
// file (a password 0123 stays "0123", not the octal number 83).
func settingsNodes(b []byte) (map[string]*yaml.Node, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(b, &doc); err != nil {
		return nil, err
	}
	vals := map[string]*yaml.Node{}
	if doc.Kind == 0 || len(doc.Content) == 0 { // an empty file, comments only
		return vals, nil
	}
	m := doc.Content[0]
	for m.Kind == yaml.AliasNode {
		m = m.Alias
	}
	if m.Kind == yaml.ScalarNode && m.ShortTag() == "!!null" { // "---" alone
		return vals, nil
	}
	if m.Kind != yaml.MappingNode {
		return nil, fmt.Errorf("line %d: a %s, not a map", m.Line, m.ShortTag())
	}
	for i := 0; i+1 < len(m.Content); i += 2 {
		k := m.Content[i]
		if k.Kind != yaml.ScalarNode {
			return nil, fmt.Errorf("line %d: a key that is not a setting name", k.Line)
		}
		if _, dup := vals[k.Value]; dup {
			return nil, fmt.Errorf("line %d: %q set twice", k.Line, k.Value)
		}
		vals[k.Value] = m.Content[i+1]
	}
	return vals, nil
}

// yamlString gives the text of a setting's value node as written: a scalar,
// or for a list setting (list) a sequence of scalars joined by commas.
// present is false for a null (`key:` or `key: ~`); ok is false for any
// other shape (a map, a nested list, a list for a single value).
func yamlString(n *yaml.Node, list bool) (val string, present, ok bool) {
	for n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	switch {
	case n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null":
		return "", false, false
	case n.Kind == yaml.ScalarNode:
		return n.Value, true, true
	case n.Kind == yaml.SequenceNode && list:
		parts := make([]string, len(n.Content))
		for i, x := range n.Content {
			for x.Kind == yaml.AliasNode {
				x = x.Alias
			}
			if x.Kind != yaml.ScalarNode || x.ShortTag() == "!!null" {
				return "", true, false
			}
			parts[i] = x.Value
		}
		return strings.Join(parts, ","), true, true
	default:
		return "", true, false
	}
}

// allSettings adds the names of every setting of c and its subcommands.
func allSettings(c *cobra.Command, names map[string]bool) {
	c.Flags().VisitAll(func(fl *pflag.Flag) {
		if isSetting(c, fl) {
			names[fl.Name] = true
		}
	})
	for _, sub := range c.Commands() {
		allSettings(sub, names)
	}
}
