package rebuild

import (
	"context"

	"github.com/orderstream/orderstream/consumers"
)

// Generation states as reported by every Projection.
const (
	StateBuilding = "building" // being filled by a rebuild; written by the daemon, not read
	StateServing  = "serving"  // what every reader sees; exactly one
	StateRetired  = "retired"  // replaced by a cutover, kept current for rollback
	StateDetached = "detached" // kept but no longer written (search: out of the write alias)
)

// Generation is one generation of a read model.
type Generation struct {
	Number uint32 `json:"generation"`
	State  string `json:"state"`
}

// Projection is what a rebuild and the status need of one read model:
// its generations and a sink bound to one of them. The analytics and search
// adapters (NewAnalytics, NewSearch) implement it.
type Projection interface {
	// Name is the projection's name: "analytics" or "search".
	Name() string
	// Generations lists the live (not dropped) generations, ascending.
	Generations(ctx context.Context) ([]Generation, error)
	// NextGeneration returns the number a new generation should take.
	NextGeneration(ctx context.Context) (uint32, error)
	// CreateGeneration creates generation n, empty, as building: from then
	// on the daemon (writing every live generation) writes new events to it.
	CreateGeneration(ctx context.Context, n uint32) error
	// Sink returns a sink that writes generation n only, and its closer.
	Sink(ctx context.Context, n uint32) (consumers.Sink, func() error, error)
	// Cutover makes n the serving generation for every reader at once; the
	// one serving before is kept (retired) for Rollback.
	Cutover(ctx context.Context, n uint32) error
	// Rollback serves again the generation the serving one replaced and
	// returns its number.
	Rollback(ctx context.Context) (uint32, error)
	// DropGeneration deletes generation n (never the serving one).
	DropGeneration(ctx context.Context, n uint32) error
	// Clear deletes every document or row of generation n, keeping it in
	// place (in-place rebuilds).
	Clear(ctx context.Context, n uint32) error
	// Close releases the adapter's connections.
	Close() error
}

// Serving returns the serving generation among gens, 0 when none serves.
func Serving(gens []Generation) uint32 {
	for _, g := range gens {
		if g.State == StateServing {
			return g.Number
		}
	}
	return 0
}

// Building returns the building generations among gens.
func Building(gens []Generation) []uint32 {
	var out []uint32
	for _, g := range gens {
		if g.State == StateBuilding {
			out = append(out, g.Number)
		}
	}
	return out
}
