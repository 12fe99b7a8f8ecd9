package search

import (
	"context"
	"encoding/json"

	"fmt"

	"github.com/orderstream/orderstream/consumers"
	"github.com/orderstream/orderstream/projections"
)

// ReadModel is the search read model as a projections.ReadModel. A
// generation's state derives from the aliases: serving (read alias),
// retired (in the write alias and older than the serving one, or in the
// retired alias: a rollback retires the newer generation it left),
// building (in the write alias, newer, not retired), detached (in no
// alias). It holds no connection of its own (Close does nothing) and is
// safe for concurrent use.
type ReadModel struct {
	cfg   Config
	admin *Admin
	opts  []Option
}

var _ projections.ReadModel = (*ReadModel)(nil)

// NewReadModel returns the read model of cfg (cfg.Engine required); opts
// are passed to every Sink (WithLogger, WithRegisterer: register one
// sink's metrics per registry). It sends no request.
func NewReadModel(cfg Config, opts ...Option) (*ReadModel, error) {
	adm, err := NewAdmin(cfg)
	if err != nil {
		return nil, err
	}
	return &ReadModel{cfg: adm.cfg, admin: adm, opts: opts}, nil
}

// Name implements projections.ReadModel: "search".
func (m *ReadModel) Name() string { return "search" }

// Admin returns the read model's Admin.
func (m *ReadModel) Admin() *Admin { return m.admin }

// Setup implements projections.ReadModel: Admin.Setup.
func (m *ReadModel) Setup(ctx context.Context) error {
	_, err := m.admin.Setup(ctx)
	return err
}

// Generations implements projections.ReadModel: every generation index
// with its state and documents (soft-deleted ones included).
func (m *ReadModel) Generations(ctx context.Context) ([]projections.Generation, error) {
	gens, err := m.admin.Generations(ctx)
	if err != nil || len(gens) == 0 {
		return nil, err
	}
	docs, err := m.documents(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]projections.Generation, 0, len(gens))
	for _, g := range gens {
		st := projections.StateDetached
		switch {
		case g.Serving:
			st = projections.StateServing
		case g.Retired:
			st = projections.StateRetired
		case g.Writing:
			st = projections.StateBuilding
		}
		out = append(out, projections.Generation{Number: uint32(g.N), State: st, Rows: docs[g.Index],
			CreatedAt: g.CreatedAt, CutoverAt: g.CutoverAt, RetiredAt: g.RetiredAt})
	}
	return out, nil
}

// documents counts the documents of every generation index in one request
// (a terms aggregation on _index).
func (m *ReadModel) documents(ctx context.Context) (map[string]int64, error) {
	pattern := m.admin.names.Pattern()
	body, err := json.Marshal(map[string]any{
		"size": 0, "query": map[string]any{"match_all": map[string]any{}},
		"aggs": map[string]any{"index": map[string]any{"terms": map[string]any{"field": "_index", "size": 10000}}},
	})
	if err != nil {
		return nil, err
	}
	r, err := m.cfg.Engine.Search(ctx, pattern, body)
	if err != nil {
		return nil, fmt.Errorf("count documents of %s: %w", pattern, err)
	}
	if err := check("count documents of "+pattern, r); err != nil {
		return nil, err
	}
	var res struct {
		Aggregations struct {
			Index struct {
				Buckets []struct {
					Key   string `json:"key"`
					Count int64  `json:"doc_count"`
				} `json:"buckets"`
			} `json:"index"`
		} `json:"aggregations"`
	}
	if err := json.Unmarshal(r.Body, &res); err != nil {
		return nil, fmt.Errorf("count documents of %s: decode: %w", pattern, err)
	}
	out := map[string]int64{}
	for _, b := range res.Aggregations.Index.Buckets {
		out[b.Key] = b.Count
	}
	return out, nil
}

// NextGeneration implements projections.ReadModel: one above the highest
// index (a dropped index's number may be taken again).
func (m *ReadModel) NextGeneration(ctx context.Context) (uint32, error) {
	gens, err := m.admin.Generations(ctx)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, g := range gens {
		n = max(n, g.N)
	}
	return uint32(n + 1), nil
}

// CreateGeneration implements projections.ReadModel: Setup first
// (template, generation 1 when none serves), so that the new generation
// gets the current mapping, then Admin.CreateGeneration.
func (m *ReadModel) CreateGeneration(ctx context.Context, n uint32) error {
	if _, err := m.admin.Setup(ctx); err != nil {
		return err
	}
	return m.admin.CreateGeneration(ctx, int(n))
}

// Sink implements projections.ReadModel. With n = 0 it runs Setup first
// (idempotent), so the write alias exists; with n > 0 it checks that the
// generation exists (an error wrapping projections.ErrNoGeneration if not).
func (m *ReadModel) Sink(ctx context.Context, n uint32) (consumers.Sink, func() error, error) {
	if n == 0 {
		if _, err := m.admin.Setup(ctx); err != nil {
			return nil, nil, err
		}
	} else {
		gens, err := m.admin.Generations(ctx)
		if err != nil {
			return nil, nil, err
		}
		if !hasGeneration(gens, int(n)) {
			return nil, nil, fmt.Errorf("search generation %d: %w", n, projections.ErrNoGeneration)
		}
	}
	sk, err := NewSink(SinkConfig{Config: m.cfg, Generation: int(n)}, m.opts...)
	if err != nil {
		return nil, nil, err
	}
	return sk, sk.Close, nil
}

func hasGeneration(gens []GenerationIndex, n int) bool {
	for _, g := range gens {
		if g.N == n {
			return true
		}
	}
	return false
}

// Cutover implements projections.ReadModel: a refresh of generation n, then
// one atomic _aliases call (Admin.Cutover). The refresh makes every write
// acknowledged so far visible to search; without it the first searches
// after the swap may miss the documents of a rebuild's last bulk requests
// (the engines refresh by themselves only every second).
func (m *ReadModel) Cutover(ctx context.Context, n uint32) error {
	index := m.admin.names.Index(int(n))
	r, err := m.cfg.Engine.Refresh(ctx, index)
	if err != nil {
		return fmt.Errorf("cutover to search generation %d: refresh %s: %w", n, index, err)
	}
	if r.Status == 404 {
		return fmt.Errorf("cutover to search generation %d: %w", n, projections.ErrNoGeneration)
	}
	if err := check("refresh "+index, r); err != nil {
		return fmt.Errorf("cutover to search generation %d: %w", n, err)
	}
	return m.admin.Cutover(ctx, int(n))
}

// Rollback implements projections.ReadModel: Admin.Rollback.
func (m *ReadModel) Rollback(ctx context.Context) (uint32, error) {
	n, err := m.admin.Rollback(ctx)
	return uint32(n), err
}

// DropGeneration implements projections.ReadModel: Admin.DropGeneration.
func (m *ReadModel) DropGeneration(ctx context.Context, n uint32) error {
	return m.admin.DropGeneration(ctx, int(n))
}

// Clear implements projections.ReadModel: the generation's index is
// deleted and created again (the template gives it the current mapping),
// then given back the aliases it had, in one _aliases call. Readers of the
// alias get errors in between: in-place rebuilds take the read model down
// by design.
func (m *ReadModel) Clear(ctx context.Context, n uint32) error {
	index := m.admin.names.Index(int(n))
	r, err := m.cfg.Engine.Aliases(ctx, index)
	if err != nil {
		return fmt.Errorf("clear search generation %d: aliases of %s: %w", n, index, err)
	}
	if err := check("aliases of "+index, r); err != nil {
		return fmt.Errorf("clear search generation %d: %w", n, err)
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
		actions = append(actions, addAlias(index, alias, a.IsWriteIndex))
	}
	if r, err := m.cfg.Engine.DeleteIndex(ctx, index); err != nil || !r.OK() {
		return fmt.Errorf("clear search generation %d: %w", n, orEngineError("delete "+index, r, err))
	}
	if err := m.admin.createIndex(ctx, int(n), false); err != nil {
		return fmt.Errorf("clear search generation %d: %w", n, err)
	}
	if len(actions) > 0 {
		if err := m.admin.updateAliases(ctx, "restore aliases of "+index, actions...); err != nil {
			return fmt.Errorf("clear search generation %d: %w", n, err)
		}
	}
	return nil
}

// orEngineError is err, or the engine's non-2xx answer as an *EngineError.
func orEngineError(op string, r Response, err error) error {
	if err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	return check(op, r)
}

// searchPage is the number of documents OrderVersions asks for per request
// (the engines' default index.max_result_window is 10,000).
const searchPage = 10000

// OrderVersions implements projections.ReadModel: the version field of
// every document of generation n (soft-deleted ones included), after a
// refresh, paged by order_id with search_after, read from doc values.
func (m *ReadModel) OrderVersions(ctx context.Context, n uint32) (projections.Versions, error) {
	vs := projections.Versions{}
	err := m.eachOrder(ctx, n, []string{"order_id", "version"}, func(id string, f docValues) error {
		if len(f.Version) != 1 {
			return fmt.Errorf("document %s without one version: %+v", id, f)
		}
		vs[id] = f.Version[0]
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("search generation %d: read order versions: %w", n, err)
	}
	return vs, nil
}

// OrderFacts implements projections.ReadModel as OrderVersions does, with
// each document's status, total_milli and line_count.
func (m *ReadModel) OrderFacts(ctx context.Context, n uint32) (map[string]projections.Facts, error) {
	fs := map[string]projections.Facts{}
	err := m.eachOrder(ctx, n, []string{"order_id", "version", "status", "total_milli", "line_count"}, func(id string, f docValues) error {
		if len(f.Version) != 1 || len(f.Status) != 1 || len(f.TotalMilli) != 1 || len(f.LineCount) != 1 {
			return fmt.Errorf("document %s without one version, status, total_milli and line_count: %+v", id, f)
		}
		fs[id] = projections.Facts{Version: f.Version[0], Status: f.Status[0], TotalMilli: f.TotalMilli[0], Lines: f.LineCount[0]}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("search generation %d: read order facts: %w", n, err)
	}
	return fs, nil
}

// docValues are the doc values eachOrder reads (those asked for).
type docValues struct {
	OrderID    []string `json:"order_id"`
	Version    []int64  `json:"version"`
	Status     []string `json:"status"`
	TotalMilli []int64  `json:"total_milli"`
	LineCount  []int64  `json:"line_count"`
}

// eachOrder calls each with the doc values fields (order_id among them) of
// every document of generation n (soft-deleted ones included), after a
// refresh, paged by order_id with search_after, stopping at each's first
// error.
func (m *ReadModel) eachOrder(ctx context.Context, n uint32, fields []string, each func(id string, f docValues) error) error {
	index := m.admin.names.Index(int(n))
	if r, err := m.cfg.Engine.Refresh(ctx, index); err != nil || !r.OK() {
		return orEngineError("refresh "+index, r, err)
	}
	var after []any
	for {
		// Doc values, not _source: reading each document's source (all
		// its lines) costs about ten times as much.
		q := map[string]any{
			"size": searchPage, "_source": false, "docvalue_fields": fields,
			"sort": []any{map[string]any{"order_id": "asc"}}, "query": map[string]any{"match_all": map[string]any{}},
		}
		if after != nil {
			q["search_after"] = after
		}
		body, err := json.Marshal(q)
		if err != nil {
			return err
		}
		r, err := m.cfg.Engine.Search(ctx, index, body)
		if err != nil || !r.OK() {
			return orEngineError("search "+index, r, err)
		}
		var res struct {
			Hits struct {
				Hits []struct {
					Fields docValues `json:"fields"`
					Sort   []any     `json:"sort"`
				} `json:"hits"`
			} `json:"hits"`
		}
		if err := json.Unmarshal(r.Body, &res); err != nil {
			return fmt.Errorf("decode: %w", err)
		}
		for _, h := range res.Hits.Hits {
			if len(h.Fields.OrderID) != 1 {
				return fmt.Errorf("a document without one order_id: %+v", h.Fields)
			}
			if err := each(h.Fields.OrderID[0], h.Fields); err != nil {
				return err
			}
		}
		if len(res.Hits.Hits) < searchPage {
			return nil
		}
		after = res.Hits.Hits[len(res.Hits.Hits)-1].Sort
	}
}

// Close implements projections.ReadModel; it holds nothing to release.
func (m *ReadModel) Close() error { return nil }
