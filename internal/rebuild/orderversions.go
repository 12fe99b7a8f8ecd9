package rebuild

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/shopspring/decimal"
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

// OrderFacts implements FactReader: every order of generation n placed
// (orders_g<n>) with the version of its last event, its status (the view
// order_status's fold), its total in thousandths and its line_count, read
// through the view orders' definition on generation n (FINAL: exact before
// merges).
func (a *Analytics) OrderFacts(ctx context.Context, n uint32) (map[string]Facts, error) {
	fs := map[string]Facts{}
	q := "SELECT order_id, toString(status), toString(total), toInt64(line_count), toInt64(version) FROM (" + a.store.OrdersSQL(n) + ") AS verified"
	err := a.each(ctx, q, func(rows driver.Rows) error {
		var id, total string
		var f Facts
		if err := rows.Scan(&id, &f.Status, &total, &f.Lines, &f.Version); err != nil {
			return err
		}
		d, err := decimal.NewFromString(total)
		if err != nil {
			return fmt.Errorf("order %s: total %q: %w", id, total, err)
		}
		f.TotalMilli = d.Shift(3).IntPart() // Decimal(18,3): exact
		fs[id] = f
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("analytics generation %d: read order facts: %w", n, err)
	}
	return fs, nil
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
	vs := Versions{}
	err := s.eachOrder(ctx, n, []string{"order_id", "version"}, func(id string, f searchFields) error {
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

// OrderFacts implements FactReader as OrderVersions does, with each
// document's status, total_milli and line_count.
func (s *Search) OrderFacts(ctx context.Context, n uint32) (map[string]Facts, error) {
	fs := map[string]Facts{}
	err := s.eachOrder(ctx, n, []string{"order_id", "version", "status", "total_milli", "line_count"}, func(id string, f searchFields) error {
		if len(f.Version) != 1 || len(f.Status) != 1 || len(f.TotalMilli) != 1 || len(f.LineCount) != 1 {
			return fmt.Errorf("document %s without one version, status, total_milli and line_count: %+v", id, f)
		}
		fs[id] = Facts{Version: f.Version[0], Status: f.Status[0], TotalMilli: f.TotalMilli[0], Lines: f.LineCount[0]}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("search generation %d: read order facts: %w", n, err)
	}
	return fs, nil
}

// searchFields are the doc values eachOrder reads (those asked for).
type searchFields struct {
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
func (s *Search) eachOrder(ctx context.Context, n uint32, fields []string, each func(id string, f searchFields) error) error {
	index := s.cfg.Names().Index(int(n))
	if r, err := s.cfg.Engine.Refresh(ctx, index); err != nil || !r.OK() {
		return fmt.Errorf("refresh %s: %w", index, engineErr(r.Status, r.Body, err))
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
		r, err := s.cfg.Engine.Search(ctx, index, body)
		if err != nil || !r.OK() {
			return engineErr(r.Status, r.Body, err)
		}
		var res struct {
			Hits struct {
				Hits []struct {
					Fields searchFields `json:"fields"`
					Sort   []any        `json:"sort"`
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
