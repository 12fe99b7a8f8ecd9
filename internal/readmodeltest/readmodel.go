package readmodeltest

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/orderstream/orderstream/consumers"
	"github.com/orderstream/orderstream/schemas"
)

// Fact is what every read model answers about one order: the
// aggregate_version of the last event applied, the status it left, the
// order's total (exact decimal, canonical form of decimal.Decimal.String:
// "35.642", "-15", "0") and its number of lines.
type Fact struct {
	Version int64
	Status  schemas.Status
	Total   string
	Lines   int
}

func (f Fact) String() string {
	return fmt.Sprintf("v%d %s total %s, %d lines", f.Version, f.Status, f.Total, f.Lines)
}

// Facts maps an order id to its Fact.
type Facts map[string]Fact

// ReadModel adapts one read model to the suite.
type ReadModel interface {
	// New returns a fresh instance of the read model on the real service,
	// isolated from every other test (its own database, index prefix …),
	// set up with generation 1 serving and empty, removed at t's cleanup.
	// It fails t (never skips under CI=true) when the service is missing.
	New(t *testing.T) Instance
	// Unreachable returns a sink of the read model whose server does not
	// answer (a closed port), bounded to give up within seconds.
	Unreachable(t *testing.T) consumers.Sink
	// ErrRejected is the sentinel every permanent rejection of the read
	// model's sink wraps, or nil when the read model has none.
	ErrRejected() error
}

// Instance is one isolated read model.
type Instance interface {
	// Sink returns a sink writing generation n (≥ 1) only, as a rebuild's
	// sink does; closed at t's cleanup.
	Sink(t *testing.T, n uint32) consumers.Sink
	// CreateGeneration creates the empty generation n.
	CreateGeneration(ctx context.Context, n uint32) error
	// Cutover makes generation n the one readers see.
	Cutover(ctx context.Context, n uint32) error
	// Rollback serves again the generation the serving one replaced and
	// returns its number.
	Rollback(ctx context.Context) (uint32, error)
	// Facts returns the Fact of every order of generation n as the read
	// model answers it now (writes acknowledged by a sink visible), or of
	// what readers see when n is 0 (the serving generation, through the
	// read model's stable names: views, read alias).
	Facts(ctx context.Context, n uint32) (Facts, error)
}

// Records wraps events as records of partition 0 at offsets from, from+1 …
// with the order id as key.
func Records(from int64, events ...schemas.Envelope) []consumers.Record {
	out := make([]consumers.Record, len(events))
	for i, e := range events {
		out[i] = consumers.Record{Topic: "orders", Offset: from + int64(i), Key: []byte(e.AggregateID), Event: e}
	}
	return out
}

// diff describes how got differs from want, order by order (at most 10
// orders named), or returns "" when they are equal.
func diff(want, got Facts) string {
	var b strings.Builder
	n := 0
	ids := slices.Sorted(maps.Keys(want))
	for _, id := range slices.Sorted(maps.Keys(got)) {
		if _, ok := want[id]; !ok {
			ids = append(ids, id)
		}
	}
	for _, id := range ids {
		w, inWant := want[id]
		g, inGot := got[id]
		if inWant && inGot && w == g {
			continue
		}
		n++
		if n > 10 {
			continue
		}
		switch {
		case !inGot:
			fmt.Fprintf(&b, "\n  %s: missing, want %s", id, w)
		case !inWant:
			fmt.Fprintf(&b, "\n  %s: %s, want absent", id, g)
		default:
			fmt.Fprintf(&b, "\n  %s: %s, want %s", id, g, w)
		}
	}
	if n == 0 {
		return ""
	}
	return fmt.Sprintf("%d order(s) differ (%d expected, %d found):%s", n, len(want), len(got), b.String())
}
