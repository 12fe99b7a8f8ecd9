package main

import (
	"context"
	"io"
	"strconv"

	"github.com/orderstream/orderstream/consumers"
	"github.com/orderstream/orderstream/projections/analytics"
)

// newAnalyticsSink builds the ClickHouse sink of the analytics read model,
// writing generation ("" = follow the registry: every generation that is
// building, serving or retired). The schema is migrated before the first
// write; a server that is down makes writes fail transiently (retried).
func newAnalyticsSink(_ context.Context, g *globals, sp sinkParams) (consumers.Sink, io.Closer, error) {
	cfg := analytics.Config{Addr: g.clickhouse, Database: g.chDatabase}
	if generation := sp.generation; generation != "" {
		n, err := strconv.ParseUint(generation, 10, 32)
		if err != nil || n == 0 {
			return nil, nil, usagef("--generation %q: want a generation number >= 1, or nothing to follow the serving one", generation)
		}
		cfg.Generation = uint32(n)
	}
	s, err := analytics.NewSink(cfg, analytics.WithLogger(g.log))
	if err != nil {
		return nil, nil, err
	}
	return s, s, nil
}
