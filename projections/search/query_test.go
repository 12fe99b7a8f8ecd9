package search

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"
)

// queryOf decodes a body built by searchBody into generic JSON.
func queryOf(t *testing.T, req Request) map[string]any {
	t.Helper()
	b, _, err := searchBody(req)
	if err != nil {
		t.Fatalf("searchBody(%+v): %v", req, err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func jsonOf(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

func TestSearchBody(t *testing.T) {
	t.Parallel()
	london, _ := time.LoadLocation("Europe/London")
	tests := []struct {
		name string
		give Request
		want []string // fragments of the body's JSON
		not  []string // fragments that must be absent
	}{
		{
			name: "no criteria: newest first, deleted excluded, facets, one extra hit",
			give: Request{},
			want: []string{
				`"size":21`, `"track_total_hits":true`,
				`"sort":[{"placed_at":"desc"},{"order_id":"desc"}]`,
				`"must_not":[{"term":{"deleted":true}}]`,
				`"country":{"terms":{"field":"country","size":250}}`,
				`"kind":{"terms":{"field":"kind","size":250}}`,
				`"status":{"terms":{"field":"status","size":250}}`,
				`"channel":{"terms":{"field":"channel","missing":"unknown","size":250}}`,
			},
			not: []string{`"must":`, `"search_after"`, `"nested"`},
		},
		{
			name: "channel web: a term filter",
			give: Request{Channel: "web"},
			want: []string{`"filter":[{"term":{"channel":"web"}}]`},
		},
		{
			name: "channel unknown: orders without one",
			give: Request{Channel: "unknown"},
			want: []string{`"filter":[{"bool":{"must_not":[{"exists":{"field":"channel"}}]}}]`},
		},
		{
			name: "text: multi_match with order number boost, all-words and phrase boosts, relevance sort",
			give: Request{Text: "  hanging heart "},
			want: []string{
				`"multi_match":{"fields":["descriptions","order_number^20"],"query":"hanging heart","type":"best_fields"}`,
				`"match":{"descriptions":{"boost":3,"operator":"and","query":"hanging heart"}}`,
				`"match_phrase":{"descriptions":{"boost":2,"query":"hanging heart"}}`,
				`"sort":[{"_score":"desc"},{"order_id":"asc"}]`,
				`"inner_hits":{"_source":false,"name":"matched","size":0}`,
				`"match":{"lines.description":{"operator":"and","query":"hanging heart"}}`,
			},
		},
		{
			name: "filters are filter clauses; product counts matching lines",
			give: Request{Product: "85123A", Country: "EIRE", Customer: "14911", Kind: "sale", Status: "paid", Sort: SortTotal, Size: 100},
			want: []string{
				`{"term":{"stock_codes":"85123A"}}`, `{"term":{"country":"EIRE"}}`, `{"term":{"customer_id":"14911"}}`,
				`{"term":{"kind":"sale"}}`, `{"term":{"status":"paid"}}`,
				`"term":{"lines.stock_code":"85123A"}`,
				`"sort":[{"total_milli":"desc"},{"order_id":"desc"}]`, `"size":101`,
			},
			not: []string{`"must":`},
		},
		{
			name: "dates: from inclusive, to exclusive, in UTC",
			give: Request{From: time.Date(2011, 6, 1, 0, 0, 0, 0, london), To: time.Date(2011, 7, 1, 0, 0, 0, 0, london)},
			want: []string{`{"range":{"placed_at":{"gte":"2011-05-31T23:00:00Z","lt":"2011-06-30T23:00:00Z"}}}`},
		},
		{
			name: "cursor becomes search_after verbatim",
			give: Request{Sort: SortDate, After: encodeCursor(cursor{Sort: SortDate, Values: []json.RawMessage{json.RawMessage(`1291191960000`), json.RawMessage(`"f0e1"`)}})},
			want: []string{`"search_after":[1291191960000,"f0e1"]`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := jsonOf(queryOf(t, tt.give))
			for _, w := range tt.want {
				if !strings.Contains(got, w) {
					t.Errorf("body lacks %s\nbody: %s", w, got)
				}
			}
			for _, n := range tt.not {
				if strings.Contains(got, n) {
					t.Errorf("body has %s\nbody: %s", n, got)
				}
			}
		})
	}
}

func TestSearchBodyInvalid(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		give    Request
		wantErr string
	}{
		{"size too large", Request{Size: 101}, "size 101"},
		{"negative size", Request{Size: -1}, "size -1"},
		{"unknown sort", Request{Sort: "price"}, `sort "price"`},
		{"relevance without text", Request{Sort: SortRelevance}, "needs a text"},
		{"unknown kind", Request{Kind: "invoice"}, `kind "invoice"`},
		{"unknown status", Request{Status: "lost"}, `status "lost"`},
		{"unknown channel", Request{Channel: "email"}, `channel "email"`},
		{"channel in another case", Request{Channel: "Web"}, `channel "Web"`},
		{"from after to", Request{From: time.Date(2011, 2, 1, 0, 0, 0, 0, time.UTC), To: time.Date(2011, 1, 1, 0, 0, 0, 0, time.UTC)}, "is not before"},
		{"garbage cursor", Request{After: "!!"}, "not a Next value"},
		{"cursor of another sort", Request{Sort: SortTotal, After: encodeCursor(cursor{Sort: SortDate, Values: []json.RawMessage{json.RawMessage(`1`), json.RawMessage(`"a"`)}})}, `made for sort "date"`},
		// Crafted cursors of the right sort whose values the engine would
		// refuse as search_after (a server error instead of the caller's).
		{"cursor with an object", Request{After: craftedCursor(SortDate, `{"a":1}`, `"a"`)}, "not a Next value"},
		{"cursor with a string date", Request{After: craftedCursor(SortDate, `"x"`, `"a"`)}, "not a Next value"},
		{"cursor with a fractional total", Request{Sort: SortTotal, After: craftedCursor(SortTotal, `1.5`, `"a"`)}, "not a Next value"},
		{"cursor with a numeric id", Request{After: craftedCursor(SortDate, `1`, `2`)}, "not a Next value"},
		{"cursor with a huge date", Request{After: craftedCursor(SortDate, `1e400`, `"a"`)}, "not a Next value"},
		{"cursor with a null score", Request{Text: "heart", After: craftedCursor(SortRelevance, `null`, `"a"`)}, "not a Next value"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, _, err := searchBody(tt.give)
			if !errors.Is(err, ErrInvalidRequest) || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("err = %v, want ErrInvalidRequest mentioning %q", err, tt.wantErr)
			}
		})
	}
}

func TestParseResult(t *testing.T) {
	t.Parallel()
	body := `{"hits":{"total":{"value":3,"relation":"eq"},"hits":[
	 {"_id":"a","_source":{"order_id":"a","order_number":"536365","total":"139.12","lines":[{"line_no":1,"stock_code":"85123A","description":"X","quantity":6,"unit_price":"2.55"}]},"sort":[1291191960000,"a"],
	  "inner_hits":{"matched":{"hits":{"total":{"value":1,"relation":"eq"},"hits":[]}}}},
	 {"_id":"b","_source":{"order_id":"b","order_number":"536366","total":"22.2"},"sort":[1291191950000,"b"]}
	]},"aggregations":{"country":{"buckets":[{"key":"United Kingdom","doc_count":2},{"key":"France","doc_count":1}]},
	 "kind":{"buckets":[{"key":"sale","doc_count":3}]},"status":{"buckets":[]}}}`
	res, err := parseResult([]byte(body), 1, SortDate)
	if err != nil {
		t.Fatal(err)
	}
	if res.Total != 3 || len(res.Hits) != 1 || res.Hits[0].OrderNumber != "536365" || res.Hits[0].MatchedLines != 1 {
		t.Errorf("hits: %+v", res)
	}
	if got := res.Hits[0].Lines[0].UnitPrice.String(); got != "2.55" {
		t.Errorf("unit price %s, want exact 2.55", got)
	}
	if len(res.Facets.Country) != 2 || res.Facets.Country[1] != (Bucket{Key: "France", Count: 1}) || len(res.Facets.Status) != 0 {
		t.Errorf("facets: %+v", res.Facets)
	}
	// Next points after the last returned hit, not the extra one.
	after, err := decodeCursor(res.Next, SortDate)
	if err != nil || string(after[0]) != "1291191960000" || string(after[1]) != `"a"` {
		t.Errorf("next cursor %q decodes to %s, %v", res.Next, after, err)
	}
	res, err = parseResult([]byte(body), 2, SortDate)
	if err != nil || res.Next != "" || len(res.Hits) != 2 {
		t.Errorf("last page: next %q, %d hits, %v", res.Next, len(res.Hits), err)
	}
}

func TestSearchUnknownCountry(t *testing.T) {
	t.Parallel()
	const empty = `{"hits":{"total":{"value":0},"hits":[]},"aggregations":{"country":{"buckets":[]}}}`
	const facet = `{"hits":{"total":{"value":25900},"hits":[]},"aggregations":{"country":{"buckets":[{"key":"United Kingdom","doc_count":23494},{"key":"France","doc_count":461}]}}}`
	tests := []struct {
		name      string
		give      Request
		wantCalls int
		wantErr   string
	}{
		{"wrong case", Request{Country: "france"}, 2, `did you mean "France"`},
		{"misspelt", Request{Country: "Frnace"}, 2, `country "Frnace" is in no order`},
		{"known country without hits", Request{Country: "France", Kind: "adjustment"}, 2, ""},
		{"no country filter", Request{Kind: "adjustment"}, 1, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			calls := 0
			eng := &fakeEngine{SearchFn: func(_ string, body []byte) (Response, error) {
				calls++
				if strings.Contains(string(body), `"size":0`) {
					return Response{Status: 200, Body: []byte(facet)}, nil
				}
				return Response{Status: 200, Body: []byte(empty)}, nil
			}}
			q, err := NewQuery(Config{Engine: eng})
			if err != nil {
				t.Fatal(err)
			}
			_, err = q.Search(context.Background(), tt.give)
			if calls != tt.wantCalls {
				t.Errorf("%d engine searches, want %d", calls, tt.wantCalls)
			}
			var re *RequestError
			switch {
			case tt.wantErr == "" && err != nil:
				t.Errorf("err = %v, want none", err)
			case tt.wantErr != "" && (!errors.As(err, &re) || re.Field != "country" || !strings.Contains(err.Error(), tt.wantErr)):
				t.Errorf("err = %v, want a RequestError on country mentioning %q", err, tt.wantErr)
			}
		})
	}
}

// craftedCursor is a cursor of sort with the given raw sort values.
func craftedCursor(sort Sort, first, second string) string {
	return encodeCursor(cursor{Sort: sort, Values: []json.RawMessage{json.RawMessage(first), json.RawMessage(second)}})
}
