package projections

import (
	"context"
	"errors"
	"time"

	"github.com/orderstream/orderstream/consumers"
)

// Generation states, the same words for every read model.
const (
	// StateBuilding: being filled by a rebuild; written by the daemons,
	// not read.
	StateBuilding = "building"
	// StateServing: what every reader sees; exactly one generation serves.
	StateServing = "serving"
	// StateRetired: replaced by a cutover (or a rollback), kept current by
	// the daemons so that it can serve again.
	StateRetired = "retired"
	// StateDetached: kept but no longer written, so it misses events
	// (search: an index no alias names any more).
	StateDetached = "detached"
)

// Errors every read model returns, wrapped with context; branch with
// errors.Is.
var (
	// ErrNoGeneration: the generation does not exist (never created, or
	// dropped), or no generation serves yet.
	ErrNoGeneration = errors.New("no such generation")
	// ErrNoPrevious: a rollback found no retired generation to serve again.
	ErrNoPrevious = errors.New("no retired generation to roll back to")
	// ErrServing: the operation (drop) refuses the serving generation.
	ErrServing = errors.New("generation is serving")
	// ErrExists: the generation exists already (numbers are never reused).
	ErrExists = errors.New("generation exists")
	// ErrNotSetUp: the read model was never set up (ReadModel.Setup): no
	// generation exists to write or read.
	ErrNotSetUp = errors.New("read model not set up")
)

// Generation is one live (not dropped) generation of a read model.
type Generation struct {
	// Number is the generation's number, ≥ 1, ascending with creation.
	Number uint32 `json:"generation"`
	// State is one of the State constants.
	State string `json:"state"`
	// CreatedAt, CutoverAt (last time it became serving) and RetiredAt
	// (last time it stopped serving) are UTC; zero when they never
	// happened or were not recorded (search: a generation index created,
	// or cut over, by a release that did not record them in its _meta).
	CreatedAt time.Time `json:"created_at,omitzero"`
	CutoverAt time.Time `json:"cutover_at,omitzero"`
	RetiredAt time.Time `json:"retired_at,omitzero"`
	// Rows is the number of records the generation holds (analytics: rows
	// of its order_lines table, before merges; search: documents), -1
	// when unknown.
	Rows int64 `json:"rows"`
}

// Versions maps an order id to an aggregate_version: on the write side the
// version of the order's last event (orders.version), in a read model the
// version of the last event it applied for the order.
type Versions map[string]int64

// Facts is what a verifier compares of one order besides its version.
type Facts struct {
	Version    int64  // aggregate_version of the last event applied
	Status     string // the contract's fold (schemas.Fold) of its events
	TotalMilli int64  // total in thousandths of the currency unit (schemas.MoneyScale)
	Lines      int64  // lines of its order.placed
}

// ReadModel is one read model with its generations: what the daemons, a
// rebuild, the status and the `generations` commands need of it.
// Implementations: analytics.ReadModel, search.ReadModel. Methods are safe
// for concurrent use; changes to the generations (create, cutover,
// rollback, drop, clear) from several processes at once are not
// coordinated: an operator runs one at a time.
type ReadModel interface {
	// Name is the projection's name ("analytics", "search"): its
	// consumer group is orderstream-<name>.
	Name() string
	// Setup makes the read model usable, idempotently: schema or index
	// template, and generation 1 serving when nothing serves yet. Safe
	// to run from several processes at once.
	Setup(ctx context.Context) error
	// Generations lists the live (not dropped) generations, ascending.
	Generations(ctx context.Context) ([]Generation, error)
	// NextGeneration returns the number a new generation should take:
	// above every generation ever created.
	NextGeneration(ctx context.Context) (uint32, error)
	// CreateGeneration runs Setup, then creates generation n, empty, as
	// building: from then on the daemons (writing every live generation)
	// write new events to it. ErrExists when n exists.
	CreateGeneration(ctx context.Context, n uint32) error
	// Sink returns a sink that writes generation n only, or with n = 0
	// every live generation (the daemons'), and the function that closes
	// it. ErrNoGeneration when n > 0 does not exist.
	Sink(ctx context.Context, n uint32) (consumers.Sink, func() error, error)
	// Cutover makes n the serving generation for every reader; the one
	// serving before is retired (kept current for Rollback). Cutting over
	// to the serving generation changes nothing. ErrNoGeneration for an
	// unknown n. It checks nothing about n's content: see rebuild's
	// guarded cutover.
	Cutover(ctx context.Context, n uint32) error
	// Rollback serves again the generation the serving one replaced, the
	// serving one retires; it returns the generation now serving.
	// ErrNoPrevious when none is kept.
	Rollback(ctx context.Context) (uint32, error)
	// DropGeneration deletes generation n; ErrServing for the serving one,
	// ErrNoGeneration for an unknown one.
	DropGeneration(ctx context.Context, n uint32) error
	// Clear deletes every record of generation n, keeping the generation
	// and its state (in-place rebuilds: readers see it empty meanwhile).
	Clear(ctx context.Context, n uint32) error
	// OrderVersions returns every order of generation n whose order.placed
	// was applied, with the version of the last event applied. Memory:
	// one map entry per order.
	OrderVersions(ctx context.Context, n uint32) (Versions, error)
	// OrderFacts is OrderVersions with each order's Facts.
	OrderFacts(ctx context.Context, n uint32) (map[string]Facts, error)
	// Close releases the read model's connections.
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

// Building returns the numbers of the building generations among gens.
func Building(gens []Generation) []uint32 {
	var out []uint32
	for _, g := range gens {
		if g.State == StateBuilding {
			out = append(out, g.Number)
		}
	}
	return out
}

// Find returns generation n among gens; ok is false when it is absent.
func Find(gens []Generation, n uint32) (g Generation, ok bool) {
	for _, g := range gens {
		if g.Number == n {
			return g, true
		}
	}
	return Generation{}, false
}
