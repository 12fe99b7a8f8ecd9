package search

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/orderstream/orderstream/projections"
)

// Admin manages the generations of the read model: the index template, the
// generation indexes <prefix>_v<n>, and the read and write aliases. It is
// safe for concurrent use; two admins changing the aliases at the same time
// are not coordinated (each _aliases call is atomic, the last one wins).
type Admin struct {
	eng   Engine
	names Names
	cfg   Config
}

// GenerationIndex describes the index of one generation and the aliases
// that name it (ReadModel.Generations turns it into a
// projections.Generation).
type GenerationIndex struct {
	N       int    // generation number, ≥ 1
	Index   string // <prefix>_v<N>
	Serving bool   // the read alias points here (exactly one generation serves)
	Writing bool   // in the write alias: the daemon's sink writes here
	// Retired: taken out of service by a cutover or a rollback and kept
	// current for serving again (in the write alias): a generation older
	// than the serving one, or one in the retired alias (a rollback
	// retires the newer generation it rolled back from).
	Retired bool
	// CreatedAt is the index's creation (index.creation_date); CutoverAt
	// and RetiredAt the last time it became serving and stopped serving,
	// as Admin records them in the index's mapping _meta (cutover_at,
	// retired_at; RFC 3339, UTC). Zero when never (or by a release that
	// did not record them).
	CreatedAt, CutoverAt, RetiredAt time.Time

	inRetiredAlias bool
	meta           map[string]any // the index's mapping _meta
}

// Keys of a generation index's mapping _meta that Admin maintains.
const (
	metaCutoverAt = "cutover_at"
	metaRetiredAt = "retired_at"
)

// NewAdmin returns an Admin for cfg's read model. It sends no request.
func NewAdmin(cfg Config) (*Admin, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Admin{eng: cfg.Engine, names: cfg.Names(), cfg: cfg}, nil
}

// Names returns the names of the read model.
func (a *Admin) Names() Names { return a.names }

// Setup makes the read model usable and returns the serving generation: it
// puts the index template (always, so a changed mapping applies to the next
// generation), adds the fields later builds mapped to every existing
// generation (addedFields: channel) and, when no generation serves yet, creates generation 1 with
// the read alias and the write alias (its write index). Setup is idempotent
// and safe to run from several processes at once.
func (a *Admin) Setup(ctx context.Context) (int, error) {
	r, err := a.eng.PutIndexTemplate(ctx, a.names.Template(), templateBody(a.names, a.cfg.Shards, a.cfg.Replicas))
	if err != nil {
		return 0, fmt.Errorf("put index template %s: %w", a.names.Template(), err)
	}
	if err := check("put index template "+a.names.Template(), r); err != nil {
		return 0, err
	}
	gens, err := a.Generations(ctx)
	if err != nil {
		return 0, err
	}
	for _, g := range gens {
		r, err := a.eng.PutMapping(ctx, g.Index, addedFields())
		if err != nil {
			return 0, fmt.Errorf("put mapping of %s: %w", g.Index, err)
		}
		if err := check("put mapping of "+g.Index, r); err != nil {
			return 0, err
		}
	}
	n, err := a.Serving(ctx)
	if err == nil {
		return n, nil
	}
	if !errors.Is(err, ErrNotFound) {
		return 0, err
	}
	if err := a.createIndex(ctx, 1, true); err != nil {
		return 0, err
	}
	if err := a.updateAliases(ctx, "serve generation 1",
		addAlias(a.names.Index(1), a.names.ReadAlias(), false),
		addAlias(a.names.Index(1), a.names.WriteAlias(), true)); err != nil {
		return 0, err
	}
	return 1, a.stamp(ctx, "serve generation 1", []stampOf{{index: a.names.Index(1), key: metaCutoverAt}}, time.Now())
}

// Generations lists every generation, lowest first, in one request (GET
// /<pattern>: aliases, mapping _meta, creation date).
func (a *Admin) Generations(ctx context.Context) ([]GenerationIndex, error) {
	r, err := a.eng.Indices(ctx, a.names.Pattern())
	if err != nil {
		return nil, fmt.Errorf("list generations %s: %w", a.names.Pattern(), err)
	}
	if r.Status == http.StatusNotFound {
		return nil, nil
	}
	if err := check("list generations "+a.names.Pattern(), r); err != nil {
		return nil, err
	}
	var body map[string]struct {
		Aliases  map[string]json.RawMessage `json:"aliases"`
		Mappings struct {
			Meta map[string]any `json:"_meta"`
		} `json:"mappings"`
		Settings struct {
			Index struct {
				CreationDate string `json:"creation_date"` // ms since the epoch
			} `json:"index"`
		} `json:"settings"`
	}
	if err := json.Unmarshal(r.Body, &body); err != nil {
		return nil, fmt.Errorf("list generations %s: decode: %w", a.names.Pattern(), err)
	}
	var gens []GenerationIndex
	for index, v := range body {
		n, ok := a.names.Generation(index)
		if !ok {
			continue
		}
		_, serving := v.Aliases[a.names.ReadAlias()]
		_, writing := v.Aliases[a.names.WriteAlias()]
		_, retired := v.Aliases[a.names.RetiredAlias()]
		g := GenerationIndex{N: n, Index: index, Serving: serving, Writing: writing, inRetiredAlias: retired, meta: v.Mappings.Meta,
			CutoverAt: metaTime(v.Mappings.Meta, metaCutoverAt), RetiredAt: metaTime(v.Mappings.Meta, metaRetiredAt)}
		if ms, err := strconv.ParseInt(v.Settings.Index.CreationDate, 10, 64); err == nil {
			g.CreatedAt = time.UnixMilli(ms).UTC()
		}
		gens = append(gens, g)
	}
	slices.SortFunc(gens, func(x, y GenerationIndex) int { return x.N - y.N })
	serving := 0
	for _, g := range gens {
		if g.Serving {
			serving = g.N
		}
	}
	for i, g := range gens {
		gens[i].Retired = !g.Serving && g.Writing && (g.inRetiredAlias || g.N < serving)
	}
	return gens, nil
}

// Serving returns the generation the read alias points to, or an error
// wrapping ErrNotFound when there is none (Setup has not run).
func (a *Admin) Serving(ctx context.Context) (int, error) {
	gens, err := a.Generations(ctx)
	if err != nil {
		return 0, err
	}
	for _, g := range gens {
		if g.Serving {
			return g.N, nil
		}
	}
	return 0, fmt.Errorf("read alias %s: %w (%w)", a.names.ReadAlias(), ErrNotFound, projections.ErrNoGeneration)
}

// CreateGeneration creates the empty generation n (≥ 1; the template gives
// it its mapping) and adds it to the write alias (not as its write index),
// so that from now on the daemon's sink writes every event to it as well as
// to the serving generation, and a rebuild into n misses nothing. It fails
// when the index exists (wrapping projections.ErrExists).
func (a *Admin) CreateGeneration(ctx context.Context, n int) error {
	if n < 1 {
		return fmt.Errorf("create generation %d: want a generation ≥ 1", n)
	}
	if err := a.createIndex(ctx, n, false); err != nil {
		var ee *EngineError
		if errors.As(err, &ee) && ee.Type == "resource_already_exists_exception" {
			return fmt.Errorf("create generation %d: %w (%w)", n, projections.ErrExists, err)
		}
		return err
	}
	return a.updateAliases(ctx, fmt.Sprintf("add generation %d to %s", n, a.names.WriteAlias()),
		addAlias(a.names.Index(n), a.names.WriteAlias(), false))
}

// Cutover makes generation n the serving one in one atomic _aliases call:
// the read alias moves to n, n becomes the write alias' write index, and the
// previously serving generation is retired: it stays in the write alias so
// that it is kept current for Rollback (or a Cutover back to it) until
// DropGeneration. n may be a generation being built or a retired one.
// Cutover to the serving generation is a no-op; a missing generation is an
// error wrapping ErrNotFound.
func (a *Admin) Cutover(ctx context.Context, n int) error {
	gens, err := a.Generations(ctx)
	if err != nil {
		return err
	}
	return a.serve(ctx, gens, n, "cutover")
}

// Rollback makes the newest generation older than the serving one (and
// still in the write alias, i.e. current) the serving one, atomically, and
// returns it. The generation rolled back from is retired (kept in the write
// alias, so that a Cutover can serve it again). With no such generation
// the error wraps ErrNotFound and projections.ErrNoPrevious.
func (a *Admin) Rollback(ctx context.Context) (int, error) {
	gens, err := a.Generations(ctx)
	if err != nil {
		return 0, err
	}
	cur := 0
	for _, g := range gens {
		if g.Serving {
			cur = g.N
		}
	}
	if cur == 0 {
		return 0, fmt.Errorf("rollback: read alias %s: %w", a.names.ReadAlias(), ErrNotFound)
	}
	to := 0
	for _, g := range gens {
		if g.N < cur && g.Writing {
			to = g.N
		}
	}
	if to == 0 {
		return 0, fmt.Errorf("rollback from generation %d: no older generation is kept current (in %s): %w (%w)", cur, a.names.WriteAlias(), ErrNotFound, projections.ErrNoPrevious)
	}
	return to, a.serve(ctx, gens, to, "rollback")
}

// DropGeneration deletes generation n. It refuses the serving generation
// (projections.ErrServing); a missing one wraps ErrNotFound and
// projections.ErrNoGeneration.
func (a *Admin) DropGeneration(ctx context.Context, n int) error {
	gens, err := a.Generations(ctx)
	if err != nil {
		return err
	}
	i := slices.IndexFunc(gens, func(g GenerationIndex) bool { return g.N == n })
	if i < 0 {
		return fmt.Errorf("drop generation %d: %w (%w)", n, projections.ErrNoGeneration, ErrNotFound)
	}
	if gens[i].Serving {
		return fmt.Errorf("drop generation %d: %w (cut over or roll back first)", n, projections.ErrServing)
	}
	r, err := a.eng.DeleteIndex(ctx, gens[i].Index)
	if err != nil {
		return fmt.Errorf("drop generation %d: %w", n, err)
	}
	return check("drop generation "+gens[i].Index, r)
}

// Refresh makes every write so far visible to search in every generation
// (tests and tools; the engines refresh by themselves every second).
func (a *Admin) Refresh(ctx context.Context) error {
	r, err := a.eng.Refresh(ctx, a.names.Pattern())
	if err != nil {
		return fmt.Errorf("refresh %s: %w", a.names.Pattern(), err)
	}
	return check("refresh "+a.names.Pattern(), r)
}

// DropAll deletes every generation and the template of the read model
// (tests' cleanup).
func (a *Admin) DropAll(ctx context.Context) error {
	gens, err := a.Generations(ctx)
	if err != nil {
		return err
	}
	var errs []error
	for _, g := range gens {
		if r, err := a.eng.DeleteIndex(ctx, g.Index); err != nil {
			errs = append(errs, err)
		} else if err := check("delete "+g.Index, r); err != nil {
			errs = append(errs, err)
		}
	}
	if r, err := a.eng.DeleteIndexTemplate(ctx, a.names.Template()); err != nil {
		errs = append(errs, err)
	} else if r.Status != http.StatusNotFound {
		errs = append(errs, check("delete template "+a.names.Template(), r))
	}
	return errors.Join(errs...)
}

// serve moves the read alias to generation n (Cutover, Rollback) and then
// records the time in the _meta of the indexes: cutover_at of n,
// retired_at of the one that served. The alias switch is the cutover; a
// failure to record its time afterwards is returned as such.
func (a *Admin) serve(ctx context.Context, gens []GenerationIndex, n int, op string) error {
	i := slices.IndexFunc(gens, func(g GenerationIndex) bool { return g.N == n })
	if i < 0 {
		return fmt.Errorf("%s to generation %d: %w (%w)", op, n, projections.ErrNoGeneration, ErrNotFound)
	}
	if gens[i].Serving && gens[i].Writing {
		return nil
	}
	stamps := []stampOf{{index: gens[i].Index, key: metaCutoverAt, meta: gens[i].meta}}
	var actions []map[string]any
	for _, g := range gens {
		if g.Serving {
			stamps = append(stamps, stampOf{index: g.Index, key: metaRetiredAt, meta: g.meta})
			actions = append(actions,
				map[string]any{"remove": map[string]any{"index": g.Index, "alias": a.names.ReadAlias()}},
				addAlias(g.Index, a.names.RetiredAlias(), false))
		}
	}
	if gens[i].inRetiredAlias {
		actions = append(actions, map[string]any{"remove": map[string]any{"index": gens[i].Index, "alias": a.names.RetiredAlias()}})
	}
	actions = append(actions, addAlias(gens[i].Index, a.names.ReadAlias(), false))
	for _, g := range gens {
		// Re-adding an alias replaces its settings: the old serving
		// generation stays in the write alias without the write index flag.
		if g.Writing && g.N != n {
			actions = append(actions, addAlias(g.Index, a.names.WriteAlias(), false))
		}
	}
	actions = append(actions, addAlias(gens[i].Index, a.names.WriteAlias(), true))
	what := fmt.Sprintf("%s to generation %d", op, n)
	if err := a.updateAliases(ctx, what, actions...); err != nil {
		return err
	}
	return a.stamp(ctx, what, stamps, time.Now())
}

// stampOf is one time to record in an index's mapping _meta: key set to
// the time, the other keys of meta (its current _meta) kept.
type stampOf struct {
	index, key string
	meta       map[string]any
}

// stamp records at (UTC, RFC 3339) under each stamp's key in its index's
// _meta. A mapping update replaces the whole _meta, hence the merge with
// the current one (the template's owner and schema); an index whose _meta
// is not known (Setup) is read first.
func (a *Admin) stamp(ctx context.Context, what string, stamps []stampOf, at time.Time) error {
	for _, s := range stamps {
		meta := maps.Clone(s.meta)
		if meta == nil {
			gens, err := a.Generations(ctx)
			if err != nil {
				return fmt.Errorf("%s done; recording its time: %w", what, err)
			}
			for _, g := range gens {
				if g.Index == s.index {
					meta = maps.Clone(g.meta)
				}
			}
			if meta == nil {
				meta = map[string]any{}
			}
		}
		meta[s.key] = at.UTC().Format(time.RFC3339Nano)
		body, err := json.Marshal(map[string]any{"_meta": meta})
		if err != nil {
			return err
		}
		r, err := a.eng.PutMapping(ctx, s.index, body)
		if err == nil {
			err = check("put _meta of "+s.index, r)
		}
		if err != nil {
			return fmt.Errorf("%s done; recording its time in the _meta of %s: %w", what, s.index, err)
		}
	}
	return nil
}

// metaTime reads the RFC 3339 time under key of an index's _meta; zero
// when absent or not a time.
func metaTime(meta map[string]any, key string) time.Time {
	s, _ := meta[key].(string)
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}
	}
	return t.UTC()
}

func addAlias(index, alias string, writeIndex bool) map[string]any {
	return map[string]any{"add": map[string]any{"index": index, "alias": alias, "is_write_index": writeIndex}}
}

func (a *Admin) updateAliases(ctx context.Context, op string, actions ...map[string]any) error {
	body, err := json.Marshal(map[string]any{"actions": actions})
	if err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	r, err := a.eng.UpdateAliases(ctx, body)
	if err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	return check(op, r)
}

// createIndex creates generation n; with mayExist an existing index is fine.
func (a *Admin) createIndex(ctx context.Context, n int, mayExist bool) error {
	index := a.names.Index(n)
	r, err := a.eng.CreateIndex(ctx, index, nil)
	if err != nil {
		return fmt.Errorf("create index %s: %w", index, err)
	}
	if err := check("create index "+index, r); err != nil {
		var ee *EngineError
		if mayExist && errors.As(err, &ee) && ee.Type == "resource_already_exists_exception" {
			return nil
		}
		return err
	}
	return nil
}
