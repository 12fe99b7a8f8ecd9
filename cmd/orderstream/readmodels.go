package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"

	"github.com/cenkalti/backoff/v5"
	"github.com/orderstream/orderstream/consumers"
	"github.com/orderstream/orderstream/projections"
	"github.com/orderstream/orderstream/projections/analytics"
	"github.com/orderstream/orderstream/projections/search"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/pflag"
)

// readModelOptions are the settings of a read model beyond the global
// flags.
type readModelOptions struct {
	indexPrefix string                // search only; "" = search.DefaultPrefix
	reg         prometheus.Registerer // where a sink registers its metrics; nil = none
	log         *slog.Logger          // nil = the global logger
}

// readModelEntry is one read model of the registry.
type readModelEntry struct {
	name        string // the projection's name, its group orderstream-<name>
	metricsAddr string // the daemon's default --metrics-addr
	open        func(g *globals, o readModelOptions) (projections.ReadModel, error)
}

// readModels is the registry of read models: every command that handles
// read models by name (consume, replay, status, verify, dev, generations)
// finds them here. A read model is one projections.ReadModel
// implementation and one entry.
var readModels = []readModelEntry{
	{"analytics", "127.0.0.1:9465", func(g *globals, o readModelOptions) (projections.ReadModel, error) {
		cfg, err := g.analyticsConfig()
		if err != nil {
			return nil, err
		}
		return analytics.OpenReadModel(cfg, analytics.WithLogger(o.log))
	}},
	{"search", "127.0.0.1:9466", func(g *globals, o readModelOptions) (projections.ReadModel, error) {
		if o.indexPrefix == "" {
			o.indexPrefix = search.DefaultPrefix
		}
		cfg, err := searchConfig(g, o.indexPrefix)
		if err != nil {
			return nil, err
		}
		opts := []search.Option{search.WithLogger(o.log.With("projection", "search"))}
		if o.reg != nil {
			opts = append(opts, search.WithRegisterer(o.reg))
		}
		rm, err := search.NewReadModel(cfg, opts...)
		if err != nil {
			return nil, usagef("%v", err)
		}
		return rm, nil
	}},
}

// readModelNames returns the names of the registry, in its order.
func readModelNames() []string {
	names := make([]string, len(readModels))
	for i, e := range readModels {
		names[i] = e.name
	}
	return names
}

// wantReadModel is the usage text of a read-model argument.
func wantReadModel(all bool) string {
	names := readModelNames()
	if all {
		names = append(names, "all")
	}
	return strings.Join(names[:len(names)-1], ", ") + " or " + names[len(names)-1]
}

// lookupReadModel returns the registry entry of name.
func lookupReadModel(name string) (readModelEntry, error) {
	i := slices.IndexFunc(readModels, func(e readModelEntry) bool { return e.name == name })
	if i < 0 {
		return readModelEntry{}, usagef("unknown projection %q: want %s", name, wantReadModel(false))
	}
	return readModels[i], nil
}

// projectionArgs expands "all" to every read model and checks a name.
func projectionArgs(arg string) ([]string, error) {
	if arg == "all" {
		return readModelNames(), nil
	}
	if _, err := lookupReadModel(arg); err != nil {
		return nil, usagef("unknown projection %q: want %s", arg, wantReadModel(true))
	}
	return []string{arg}, nil
}

// openProjection opens the named read model, configured by the global flags;
// indexPrefix names the search read model's indexes and aliases.
func openProjection(g *globals, name, indexPrefix string) (projections.ReadModel, error) {
	return openReadModel(g, name, readModelOptions{indexPrefix: indexPrefix})
}

// openReadModel opens the named read model with o.
func openReadModel(g *globals, name string, o readModelOptions) (projections.ReadModel, error) {
	e, err := lookupReadModel(name)
	if err != nil {
		return nil, err
	}
	if o.log == nil {
		o.log = g.log
	}
	return e.open(g, o)
}

// addGroupFlags registers --<name>-group for every read model: the
// consumer group of its daemon (default orderstream-<name>); what is added
// to the flag's help says what the command does with it.
func addGroupFlags(f *pflag.FlagSet, groups map[string]*string, what string) {
	for _, e := range readModels {
		groups[e.name] = new(string)
		f.StringVar(groups[e.name], e.name+"-group", "orderstream-"+e.name, "consumer group of the "+e.name+" daemon"+what)
	}
}

// parseGeneration parses a generation number argument or flag value (≥ 1).
func parseGeneration(what, s string) (uint32, error) {
	n, err := strconv.ParseUint(s, 10, 32)
	if err != nil || n == 0 {
		return 0, usagef("%s %q: want a number >= 1", what, s)
	}
	return uint32(n), nil
}

// closerFunc adapts a close function to io.Closer.
type closerFunc func() error

func (f closerFunc) Close() error { return f() }

// daemonSink builds the sink of a projection daemon: the named read model's
// sink of generation ("" = every live generation, the daemons' rule). It
// waits, with backoff until ctx ends, for a read model that is not up yet
// (search sets itself up first); a generation that does not exist stops it
// with the command that creates one. Closing the result closes the sink and
// the read model.
func daemonSink(ctx context.Context, g *globals, name, generation string, o readModelOptions) (consumers.Sink, closerFunc, error) {
	var n uint32
	if generation != "" {
		var err error
		if n, err = parseGeneration("--generation", generation); err != nil {
			return nil, nil, usagef("--generation %q: want a generation number >= 1, or nothing to follow the serving one", generation)
		}
	}
	if o.log == nil {
		o.log = g.log
	}
	o.log = o.log.With("generation", generation)
	rm, err := openReadModel(g, name, o)
	if err != nil {
		return nil, nil, err
	}
	type built struct {
		sink  consumers.Sink
		close func() error
	}
	b, err := backoff.Retry(ctx, func() (built, error) {
		s, c, err := rm.Sink(ctx, n)
		switch {
		case errors.Is(err, projections.ErrNoGeneration):
			return built{}, backoff.Permanent(fmt.Errorf("%w: create it with 'orderstream generations create %s %d'", err, name, n))
		case err != nil:
			g.log.Warn("read model not ready, retrying", "projection", name, "err", err)
		}
		return built{s, c}, err
	}, backoff.WithBackOff(backoff.NewExponentialBackOff()), backoff.WithMaxElapsedTime(0), backoff.WithMaxTries(0))
	if err != nil {
		return nil, nil, errors.Join(err, rm.Close())
	}
	return b.sink, func() error { return errors.Join(b.close(), rm.Close()) }, nil
}

// searchConfig builds the search read model's configuration from the
// global flags.
func searchConfig(g *globals, prefix string) (search.Config, error) {
	eng, err := g.searchClient()
	if err != nil {
		return search.Config{}, err
	}
	return search.Config{Engine: eng, Prefix: prefix, Replicas: g.searchReplica}, nil
}
