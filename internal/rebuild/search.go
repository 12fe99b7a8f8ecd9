package rebuild

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"

	"github.com/orderstream/orderstream/consumers"
	"github.com/orderstream/orderstream/projections/search"
)

// Search adapts the search read model (projections/search) to Projection.
// A generation's state derives from the aliases: serving (read alias),
// retired (in the write alias and older than the serving one, or in the
// retired alias: a rollback retires the newer generation it left), building
// (in the write alias, newer, not retired), detached (in no alias).
type Search struct {
	cfg   search.Config
	admin *search.Admin
	log   *slog.Logger
}

// NewSearch returns the adapter of cfg's read model (cfg.Engine required).
// It sends no request.
func NewSearch(cfg search.Config, log *slog.Logger) (*Search, error) {
	if log == nil {
		log = slog.Default()
	}
	adm, err := search.NewAdmin(cfg)
	if err != nil {
		return nil, err
	}
	return &Search{cfg: cfg, admin: adm, log: log}, nil
}

// Name implements Projection.
func (s *Search) Name() string { return "search" }

// Admin returns the read model's Admin.
func (s *Search) Admin() *search.Admin { return s.admin }

// Generations implements Projection.
func (s *Search) Generations(ctx context.Context) ([]Generation, error) {
	gens, err := s.admin.Generations(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]Generation, 0, len(gens))
	for _, g := range gens {
		st := StateDetached
		switch {
		case g.Serving:
			st = StateServing
		case g.Retired:
			st = StateRetired
		case g.Writing:
			st = StateBuilding
		}
		out = append(out, Generation{Number: uint32(g.N), State: st})
	}
	return out, nil
}

// NextGeneration implements Projection: one above the highest index.
func (s *Search) NextGeneration(ctx context.Context) (uint32, error) {
	gens, err := s.admin.Generations(ctx)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, g := range gens {
		n = max(n, g.N)
	}
	return uint32(n + 1), nil
}

// CreateGeneration implements Projection. It runs Setup first (template,
// generation 1 when none serves), so that the new generation gets the
// current mapping.
func (s *Search) CreateGeneration(ctx context.Context, n uint32) error {
	if _, err := s.admin.Setup(ctx); err != nil {
		return err
	}
	return s.admin.CreateGeneration(ctx, int(n))
}

// Sink implements Projection.
func (s *Search) Sink(_ context.Context, n uint32) (consumers.Sink, func() error, error) {
	sk, err := search.NewSink(search.SinkConfig{Config: s.cfg, Generation: int(n)}, search.WithLogger(s.log))
	if err != nil {
		return nil, nil, err
	}
	return sk, sk.Close, nil
}

// Cutover implements Projection: a refresh of generation n, then one atomic
// _aliases call. The refresh makes every write acknowledged so far visible
// to search; without it the first searches after the swap may miss the
// documents of the rebuild's last bulk requests (the engines refresh by
// themselves only every second).
func (s *Search) Cutover(ctx context.Context, n uint32) error {
	index := s.cfg.Names().Index(int(n))
	r, err := s.cfg.Engine.Refresh(ctx, index)
	if err != nil {
		return fmt.Errorf("cutover to search generation %d: refresh %s: %w", n, index, err)
	}
	if !r.OK() {
		return fmt.Errorf("cutover to search generation %d: refresh %s: status %d: %s", n, index, r.Status, r.Body)
	}
	return s.admin.Cutover(ctx, int(n))
}

// Rollback implements Projection.
func (s *Search) Rollback(ctx context.Context) (uint32, error) {
	n, err := s.admin.Rollback(ctx)
	return uint32(n), err
}

// DropGeneration implements Projection.
func (s *Search) DropGeneration(ctx context.Context, n uint32) error {
	return s.admin.DropGeneration(ctx, int(n))
}

// Clear implements Projection: the generation's index is deleted and
// created again (the template gives it the current mapping), then given back
// the aliases it had, in one _aliases call. Readers of the alias get errors
// in between: in-place rebuilds take the read model down by design.
func (s *Search) Clear(ctx context.Context, n uint32) error {
	names := s.cfg.Names()
	index := names.Index(int(n))
	r, err := s.cfg.Engine.Aliases(ctx, index)
	if err != nil {
		return fmt.Errorf("clear search generation %d: aliases of %s: %w", n, index, err)
	}
	if !r.OK() {
		return fmt.Errorf("clear search generation %d: aliases of %s: status %d: %s", n, index, r.Status, r.Body)
	}
	var body map[string]struct {
		Aliases map[string]struct {
			IsWriteIndex bool `json:"is_write_index"`
		} `json:"aliases"`
	}
	if err := json.Unmarshal(r.Body, &body); err != nil {
		return fmt.Errorf("clear search generation %d: decode aliases: %w", n, err)
	}
	var actions []map[string]any
	for alias, a := range body[index].Aliases {
		actions = append(actions, map[string]any{"add": map[string]any{"index": index, "alias": alias, "is_write_index": a.IsWriteIndex}})
	}
	steps := []struct {
		what string
		do   func() (search.Response, error)
	}{
		{"delete " + index, func() (search.Response, error) { return s.cfg.Engine.DeleteIndex(ctx, index) }},
		{"create " + index, func() (search.Response, error) { return s.cfg.Engine.CreateIndex(ctx, index, nil) }},
	}
	if len(actions) > 0 {
		b, err := json.Marshal(map[string]any{"actions": actions})
		if err != nil {
			return err
		}
		steps = append(steps, struct {
			what string
			do   func() (search.Response, error)
		}{"restore aliases of " + index, func() (search.Response, error) { return s.cfg.Engine.UpdateAliases(ctx, b) }})
	}
	for _, st := range steps {
		r, err := st.do()
		if err != nil {
			return fmt.Errorf("clear search generation %d: %s: %w", n, st.what, err)
		}
		if !r.OK() {
			return fmt.Errorf("clear search generation %d: %s: status %d: %s", n, st.what, r.Status, r.Body)
		}
	}
	return nil
}

// Close implements Projection.
func (s *Search) Close() error { return nil }
