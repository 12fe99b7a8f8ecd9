package main

import (
	"context"
	"errors"
	"io"

	"github.com/orderstream/orderstream/consumers"
)

// newAnalyticsSink builds the ClickHouse sink of the analytics read model,
// writing generation (""  = follow the serving generation).
func newAnalyticsSink(ctx context.Context, g *globals, generation string) (consumers.Sink, io.Closer, error) {
	return nil, nil, errors.New("analytics projection: not built yet")
}
