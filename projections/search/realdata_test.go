package search

import (
	"context"
	"encoding/json"
	"errors"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/orderstream/orderstream/consumers"
	"github.com/orderstream/orderstream/internal/testfixture"
	"github.com/orderstream/orderstream/schemas"
	"github.com/shopspring/decimal"
)

// records wraps events as the runtime hands them to a sink.
func records(events []schemas.Envelope) []consumers.Record {
	out := make([]consumers.Record, len(events))
	for i, e := range events {
		out[i] = consumers.Record{Topic: "orders", Offset: int64(i), Key: []byte(e.AggregateID), Event: e}
	}
	return out
}

// writeAll writes recs through sink in batches of size, as the runtime would.
func writeAll(t testing.TB, sink *Sink, recs []consumers.Record, size int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	for start := 0; start < len(recs); start += size {
		batch := recs[start:min(start+size, len(recs))]
		if err := sink.Write(ctx, batch); err != nil {
			t.Fatalf("write batch at %d: %v", start, err)
		}
	}
}

// snapEntry is what a replay must not change.
type snapEntry struct {
	Number  string         `json:"order_number"`
	Kind    schemas.Kind   `json:"kind"`
	Status  schemas.Status `json:"status"`
	Total   string         `json:"total"` // exact, as stored (comparable)
	Version int64          `json:"version"`
}

// snapshot reads (id, version, status, total …) of every document of the
// serving generation, straight from the engine.
func snapshot(t testing.TB, eng Engine, names Names) map[string]snapEntry {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out := map[string]snapEntry{}
	var after []json.RawMessage
	for {
		body := map[string]any{
			"size":    5000,
			"query":   map[string]any{"match_all": map[string]any{}},
			"_source": []string{"order_number", "kind", "status", "total", "version"},
			"sort":    []any{map[string]any{"order_id": "asc"}},
		}
		if after != nil {
			body["search_after"] = after
		}
		b, _ := json.Marshal(body)
		r, err := eng.Search(ctx, names.ReadAlias(), b)
		if err == nil {
			err = check("snapshot", r)
		}
		if err != nil {
			t.Fatal(err)
		}
		var resp struct {
			Hits struct {
				Hits []struct {
					ID      string            `json:"_id"`
					Version int64             `json:"_version"`
					Source  snapEntry         `json:"_source"`
					Sort    []json.RawMessage `json:"sort"`
				} `json:"hits"`
			} `json:"hits"`
		}
		if err := json.Unmarshal(r.Body, &resp); err != nil {
			t.Fatal(err)
		}
		for _, h := range resp.Hits.Hits {
			out[h.ID] = h.Source
		}
		if len(resp.Hits.Hits) < 5000 {
			return out
		}
		after = resp.Hits.Hits[len(resp.Hits.Hits)-1].Sort
	}
}

// TestRealData indexes every event of the real file through the Sink, on
// each adapter, and checks the read model against the independent count from
// the CSV: documents, totals, statuses, versions, facets, product search,
// text ranking, pagination; then replays the whole stream and checks nothing
// changed.
func TestRealData(t *testing.T) {
	engines := testEngines(t)
	exp := testfixture.ExpectedFromCSV(t)
	recs := records(testfixture.RealEvents(t))
	for _, name := range []string{EngineOpenSearch, EngineElasticsearch} {
		t.Run(name, func(t *testing.T) {
			eng := engines[name]
			cfg, admin := newTestModel(t, eng)
			sink, err := NewSink(SinkConfig{Config: cfg})
			if err != nil {
				t.Fatal(err)
			}
			start := time.Now()
			writeAll(t, sink, recs, consumers.DefaultBatchMaxRecords)
			t.Logf("%s: %d events indexed in %s, %+v", name, len(recs), time.Since(start).Round(time.Millisecond), sink.Stats())
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
			defer cancel()
			if err := admin.Refresh(ctx); err != nil {
				t.Fatal(err)
			}
			before := snapshot(t, eng, cfg.Names())
			checkAgainstCSV(t, exp, before)

			q, err := NewQuery(cfg)
			if err != nil {
				t.Fatal(err)
			}
			t.Run("facets", func(t *testing.T) { checkFacets(t, q, exp) })
			t.Run("product", func(t *testing.T) { checkProduct(t, q, exp, "85123A") })
			t.Run("text", func(t *testing.T) { checkText(t, q) })
			t.Run("get", func(t *testing.T) { checkGet(t, q, recs) })

			t.Run("replay", func(t *testing.T) {
				again, err := NewSink(SinkConfig{Config: cfg})
				if err != nil {
					t.Fatal(err)
				}
				// Other batch boundaries than the first pass: orders split
				// across batches take the read path.
				writeAll(t, again, recs, 3001)
				st := again.Stats()
				t.Logf("replay: %+v", st)
				if st.Documents != 0 || st.Rejected != 0 {
					t.Errorf("replay indexed %d documents and rejected %d records, want 0 and 0", st.Documents, st.Rejected)
				}
				if st.Conflicts+st.Stale == 0 {
					t.Errorf("replay saw no version conflict and no already-applied event")
				}
				if err := admin.Refresh(ctx); err != nil {
					t.Fatal(err)
				}
				after := snapshot(t, eng, cfg.Names())
				if !maps.Equal(before, after) {
					n := 0
					for id, b := range before {
						if a, ok := after[id]; !ok || a != b {
							if n++; n <= 5 {
								t.Errorf("order %s: before %+v, after %+v", id, b, after[id])
							}
						}
					}
					t.Errorf("replay changed %d of %d documents (after: %d)", n, len(before), len(after))
				}
				checkFacets(t, q, exp)
			})
		})
	}
}

func checkAgainstCSV(t *testing.T, exp *testfixture.Expected, snap map[string]snapEntry) {
	t.Helper()
	if len(snap) != testfixture.RealDocuments || len(snap) != len(exp.Docs) {
		t.Errorf("documents: %d, want %d (CSV: %d)", len(snap), testfixture.RealDocuments, len(exp.Docs))
	}
	wantStatus := map[schemas.Kind]schemas.Status{
		schemas.KindSale: schemas.StatusPaid, schemas.KindCreditNote: schemas.StatusRefunded, schemas.KindAdjustment: schemas.StatusPlaced,
	}
	wantVersion := map[schemas.Kind]int64{schemas.KindSale: 2, schemas.KindCreditNote: 2, schemas.KindAdjustment: 1}
	net := decimal.Zero
	bad := 0
	for id, s := range snap {
		d, ok := exp.Docs[s.Number]
		total, err := decimal.NewFromString(s.Total)
		if err != nil {
			t.Fatalf("order %s: total %q: %v", id, s.Total, err)
		}
		net = net.Add(total)
		switch {
		case !ok:
			t.Errorf("order %s: number %q not in the CSV", id, s.Number)
		case !d.Total.Equal(total) || d.Kind != s.Kind || s.Status != wantStatus[d.Kind] || s.Version != wantVersion[d.Kind]:
			if bad++; bad <= 5 {
				t.Errorf("order %s (%s): got total %s kind %s status %s v%d; CSV total %s kind %s",
					id, s.Number, s.Total, s.Kind, s.Status, s.Version, d.Total, d.Kind)
			}
		}
	}
	if bad > 0 {
		t.Errorf("%d documents disagree with the CSV", bad)
	}
	if net.String() != testfixture.RealNetGBP {
		t.Errorf("Σ totals = %s, want %s", net, testfixture.RealNetGBP)
	}
}

func checkFacets(t *testing.T, q *Query, exp *testfixture.Expected) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	res, err := q.Search(ctx, Request{Size: 1})
	if err != nil {
		t.Fatal(err)
	}
	if res.Total != int64(exp.Total.Documents) {
		t.Errorf("total %d, want %d", res.Total, exp.Total.Documents)
	}
	kinds := map[string]int64{}
	for _, b := range res.Facets.Kind {
		kinds[b.Key] = b.Count
	}
	for k, n := range exp.Total.ByKind {
		if kinds[string(k)] != int64(n) {
			t.Errorf("kind facet %s = %d, want %d", k, kinds[string(k)], n)
		}
	}
	countries := map[string]int64{}
	for _, b := range res.Facets.Country {
		countries[b.Key] = b.Count
	}
	if len(countries) != len(exp.ByCountry) {
		t.Errorf("country facet has %d countries, want %d", len(countries), len(exp.ByCountry))
	}
	for c, b := range exp.ByCountry {
		if countries[c] != int64(b.Documents) {
			t.Errorf("country facet %q = %d, want %d", c, countries[c], b.Documents)
		}
	}
	// A filter narrows the facets too.
	res, err = q.Search(ctx, Request{Country: "EIRE", Kind: string(schemas.KindCreditNote)})
	if err != nil {
		t.Fatal(err)
	}
	if want := exp.DocumentsByCountryKind["EIRE"][schemas.KindCreditNote]; res.Total != int64(want) {
		t.Errorf("EIRE credit notes: %d, want %d", res.Total, want)
	}
}

func checkProduct(t *testing.T, q *Query, exp *testfixture.Expected, code string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	p := exp.Products[code]
	var got []string
	lines := 0
	req := Request{Product: code, Size: MaxSize}
	for page := 0; ; page++ {
		res, err := q.Search(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		if res.Total != int64(len(p.Documents)) {
			t.Fatalf("page %d: total %d, want %d", page, res.Total, len(p.Documents))
		}
		for _, h := range res.Hits {
			got = append(got, h.OrderNumber)
			lines += h.MatchedLines
			if !slices.Contains(h.StockCodes, code) {
				t.Errorf("order %s has no line of %s", h.OrderNumber, code)
			}
		}
		if res.Next == "" {
			break
		}
		req.After = res.Next
	}
	slices.Sort(got)
	if !slices.Equal(got, p.Documents) {
		t.Errorf("%s: %d documents over the pages, want the %d of the CSV", code, len(got), len(p.Documents))
	}
	if lines != p.Lines {
		t.Errorf("%s: %d matched lines, want %d", code, lines, p.Lines)
	}
}

func checkText(t *testing.T, q *Query) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	res, err := q.Search(ctx, Request{Text: "hanging heart", Size: 50})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Hits) != 50 {
		t.Fatalf("hanging heart: %d hits on page 1 (total %d), want 50", len(res.Hits), res.Total)
	}
	both := func(o Order) bool {
		for _, d := range o.Descriptions {
			d = strings.ToLower(d)
			if strings.Contains(d, "hanging") && strings.Contains(d, "heart") {
				return true
			}
		}
		return false
	}
	for i, h := range res.Hits {
		if !both(h) {
			t.Errorf("hit %d (%s) has no description with both words: %q", i, h.OrderNumber, h.Descriptions)
		}
		if h.MatchedLines == 0 {
			t.Errorf("hit %d (%s): 0 matched lines", i, h.OrderNumber)
		}
	}
	// An order number finds its order first.
	res, err = q.Search(ctx, Request{Text: "c536379"})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Hits) == 0 || res.Hits[0].OrderNumber != "C536379" {
		t.Errorf("text c536379: first hit %v, want order C536379", firstNumber(res))
	}
}

func firstNumber(r Result) string {
	if len(r.Hits) == 0 {
		return "(none)"
	}
	return r.Hits[0].OrderNumber
}

func checkGet(t *testing.T, q *Query, recs []consumers.Record) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	e := recs[0].Event
	p, err := e.Decode()
	if err != nil {
		t.Fatal(err)
	}
	placed := p.(*schemas.OrderPlaced)
	o, err := q.Get(ctx, e.AggregateID)
	if err != nil {
		t.Fatal(err)
	}
	if o.OrderNumber != placed.OrderNumber || len(o.Lines) != len(placed.Lines) || !o.Total.Equal(placed.Total.Amount) {
		t.Errorf("get %s: %s with %d lines total %s, want %s with %d lines total %s", e.AggregateID,
			o.OrderNumber, len(o.Lines), o.Total, placed.OrderNumber, len(placed.Lines), placed.Total.Amount)
	}
	for i, l := range o.Lines {
		if w := placed.Lines[i]; l.StockCode != w.StockCode || l.Quantity != w.Quantity || !l.UnitPrice.Equal(w.UnitPrice.Amount) {
			t.Errorf("line %d: %+v, want %+v", i, l, w)
		}
	}
	if byNumber, err := q.Get(ctx, placed.OrderNumber); err != nil || byNumber.OrderID != e.AggregateID {
		t.Errorf("get by order number %s: %s, %v; want order %s", placed.OrderNumber, byNumber.OrderID, err, e.AggregateID)
	}
	var re *RequestError
	if _, err := q.Search(ctx, Request{Country: "france"}); !errors.As(err, &re) || re.Field != "country" || !strings.Contains(err.Error(), `"France"`) {
		t.Errorf("search of country \"france\": %v; want a RequestError on country suggesting \"France\"", err)
	}
	if res, err := q.Search(ctx, Request{Country: "France", Kind: "adjustment"}); err != nil || res.Total != 0 {
		t.Errorf("search of a known country without hits: %d hits, %v; want 0 and no error", res.Total, err)
	}
	if _, err := q.Get(ctx, "no-such-order"); err == nil || !strings.Contains(err.Error(), ErrNotFound.Error()) {
		t.Errorf("get of a missing order: %v, want ErrNotFound", err)
	}
}
