package search

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
)

// SearchedVersion returns the version of order id that searches see: the
// version of its document in the serving generation as a search (not a get,
// which is real-time) finds it, so after the engine's refresh (every second
// by default). 0 when searches do not find the order yet. Read-your-writes
// waits of the search endpoint poll it.
func (q *Query) SearchedVersion(ctx context.Context, id string) (int64, error) {
	body, err := json.Marshal(map[string]any{
		"size":    1,
		"_source": []string{"version"},
		"query":   obj("bool", map[string]any{"filter": []any{obj("term", obj("order_id", id))}}),
	})
	if err != nil {
		return 0, fmt.Errorf("encode order id query: %w", err)
	}
	r, err := q.eng.Search(ctx, q.names.ReadAlias(), body)
	if err != nil {
		return 0, fmt.Errorf("search order %s: %w", id, err)
	}
	if err := check("search order "+id, r); err != nil {
		return 0, err
	}
	var res struct {
		Hits struct {
			Hits []struct {
				Source struct {
					Version int64 `json:"version"`
				} `json:"_source"`
			} `json:"hits"`
		} `json:"hits"`
	}
	if err := json.Unmarshal(r.Body, &res); err != nil {
		return 0, fmt.Errorf("decode search of order %s: %w", id, err)
	}
	if len(res.Hits.Hits) == 0 {
		return 0, nil
	}
	return res.Hits.Hits[0].Source.Version, nil
}

// OrderVersion returns the version of order id (an order id, not a
// number) in the serving generation by a real-time get, 0 when there is no
// live document: what order detail shows. One request, whatever happens, so
// that read-your-writes waits polling it stay cheap.
func (q *Query) OrderVersion(ctx context.Context, id string) (int64, error) {
	o, err := q.getByID(ctx, id)
	if errors.Is(err, ErrNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	return o.Version, nil
}
