package main

import (
	"context"
	"fmt"
	"io"
	"strconv"

	"github.com/cenkalti/backoff/v5"
	"github.com/orderstream/orderstream/consumers"
	"github.com/orderstream/orderstream/projections/search"
)

// newSearchSink builds the search-engine sink of the search read model
// under sp.indexPrefix, writing sp.generation ("" = every generation of the
// write alias: the serving one, one being built, older ones kept for
// rollback). With "" the template and generation 1 are set up first
// (idempotent), waiting for an engine that is not up yet; a numbered
// generation must exist already. The sink's metrics go to sp.reg.
func newSearchSink(ctx context.Context, g *globals, sp sinkParams) (consumers.Sink, io.Closer, error) {
	prefix, generation := sp.indexPrefix, sp.generation
	if prefix == "" {
		prefix = search.DefaultPrefix
	}
	cfg, err := searchConfig(g, prefix)
	if err != nil {
		return nil, nil, err
	}
	sc := search.SinkConfig{Config: cfg}
	if generation != "" {
		n, err := strconv.Atoi(generation)
		if err != nil || n < 1 {
			return nil, nil, usagef("--generation %q: want a generation number >= 1, or nothing to follow the serving one", generation)
		}
		sc.Generation = n
	}
	admin, err := search.NewAdmin(cfg)
	if err != nil {
		return nil, nil, usagef("%v", err)
	}
	_, err = backoff.Retry(ctx, func() (struct{}, error) {
		if sc.Generation == 0 {
			_, err := admin.Setup(ctx)
			if err != nil {
				g.log.Warn("search read model setup failed, retrying", "err", err)
			}
			return struct{}{}, err
		}
		gens, err := admin.Generations(ctx)
		if err != nil {
			g.log.Warn("listing search generations failed, retrying", "err", err)
			return struct{}{}, err
		}
		for _, gen := range gens {
			if gen.N == sc.Generation {
				return struct{}{}, nil
			}
		}
		return struct{}{}, backoff.Permanent(fmt.Errorf("search generation %d does not exist: create it with 'orderstream search admin create-generation %d'", sc.Generation, sc.Generation))
	}, backoff.WithBackOff(backoff.NewExponentialBackOff()), backoff.WithMaxElapsedTime(0), backoff.WithMaxTries(0))
	if err != nil {
		return nil, nil, err
	}
	opts := []search.Option{search.WithLogger(g.log.With("projection", "search", "generation", generation))}
	if sp.reg != nil {
		opts = append(opts, search.WithRegisterer(sp.reg))
	}
	s, err := search.NewSink(sc, opts...)
	if err != nil {
		return nil, nil, usagef("%v", err)
	}
	return s, s, nil
}

// searchConfig builds the read model's configuration from the global flags.
func searchConfig(g *globals, prefix string) (search.Config, error) {
	eng, err := search.NewEngine(search.EngineConfig{Kind: g.searchEngine, URL: g.searchURL})
	if err != nil {
		return search.Config{}, usagef("--search-engine/--search-url: %v", err)
	}
	return search.Config{Engine: eng, Prefix: prefix}, nil
}
