package rebuild

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

// OrderVersions implements VersionReader: max(version) per order of
// order_status_g<n> (one row per applied event), for the orders that have
// a row in orders_g<n> (their order.placed was applied).
func (a *Analytics) OrderVersions(ctx context.Context, n uint32) (Versions, error) {
	gen := "_g" + strconv.FormatUint(uint64(n), 10)
	db := "`" + a.cfg.Database + "`."
	placed := map[string]bool{}
	err := a.each(ctx, "SELECT DISTINCT order_id FROM "+db+"`orders"+gen+"`", func(rows driver.Rows) error {
		var id string
		err := rows.Scan(&id)
		placed[id] = true
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("analytics generation %d: read orders: %w", n, err)
	}
	vs := Versions{}
	err = a.each(ctx, "SELECT order_id, max(version) FROM "+db+"`order_status"+gen+"` GROUP BY order_id", func(rows driver.Rows) error {
		var id string
		var v uint64
		err := rows.Scan(&id, &v)
		if placed[id] {
			vs[id] = int64(v)
		}
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("analytics generation %d: read order versions: %w", n, err)
	}
	return vs, nil
}

// each runs query and calls scan for every row, stopping at its first error.
func (a *Analytics) each(ctx context.Context, query string, scan func(driver.Rows) error) error {
	rows, err := a.conn.Query(ctx, query)
	if err != nil {
		return err
	}
	for rows.Next() {
		if err := scan(rows); err != nil {
			return errors.Join(err, rows.Close())
		}
	}
	return errors.Join(rows.Err(), rows.Close())
}

// searchPage is the number of documents OrderVersions asks for per request
// (the engines' default index.max_result_window is 10,000).
const searchPage = 10000

// OrderVersions implements VersionReader: the version field of every
// document of generation n (soft-deleted ones included), after a refresh,
// paged by order_id with search_after, read from doc values.
func (s *Search) OrderVersions(ctx context.Context, n uint32) (Versions, error) {
	index := s.cfg.Names().Index(int(n))
	if r, err := s.cfg.Engine.Refresh(ctx, index); err != nil || !r.OK() {
		return nil, fmt.Errorf("search generation %d: refresh %s: %w", n, index, engineErr(r.Status, r.Body, err))
	}
	vs := Versions{}
	var after []any
	for {
		// Doc values, not _source: reading each document's source (all
		// its lines) costs about ten times as much.
		q := map[string]any{
			"size": searchPage, "_source": false, "docvalue_fields": []string{"order_id", "version"},
			"sort": []any{map[string]any{"order_id": "asc"}}, "query": map[string]any{"match_all": map[string]any{}},
		}
		if after != nil {
			q["search_after"] = after
		}
		body, err := json.Marshal(q)
		if err != nil {
			return nil, err
		}
		r, err := s.cfg.Engine.Search(ctx, index, body)
		if err != nil || !r.OK() {
			return nil, fmt.Errorf("search generation %d: read order versions: %w", n, engineErr(r.Status, r.Body, err))
		}
		var res struct {
			Hits struct {
				Hits []struct {
					Fields struct {
						OrderID []string `json:"order_id"`
						Version []int64  `json:"version"`
					} `json:"fields"`
					Sort []any `json:"sort"`
				} `json:"hits"`
			} `json:"hits"`
		}
		if err := json.Unmarshal(r.Body, &res); err != nil {
			return nil, fmt.Errorf("search generation %d: decode order versions: %w", n, err)
		}
		for _, h := range res.Hits.Hits {
			if len(h.Fields.OrderID) != 1 || len(h.Fields.Version) != 1 {
				return nil, fmt.Errorf("search generation %d: a document without one order_id and one version: %+v", n, h.Fields)
			}
			vs[h.Fields.OrderID[0]] = h.Fields.Version[0]
		}
		if len(res.Hits.Hits) < searchPage {
			return vs, nil
		}
		after = res.Hits.Hits[len(res.Hits.Hits)-1].Sort
	}
}

// engineErr is err, or the engine's non-2xx answer as an error.
func engineErr(status int, body []byte, err error) error {
	if err != nil {
		return err
	}
	if len(body) > 300 {
		body = body[:300]
	}
	return fmt.Errorf("status %d: %s", status, body)
}
