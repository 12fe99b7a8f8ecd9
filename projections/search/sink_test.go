package search

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/orderstream/orderstream/consumers"
	"github.com/orderstream/orderstream/schemas"
)

// fakeEngine is an Engine whose calls are functions of the test; methods
// without a function answer 200 {}.
type fakeEngine struct {
	BulkFn    func(body []byte) (Response, error)
	MGetFn    func(index string, body []byte) (Response, error)
	AliasesFn func(pattern string) (Response, error)
	SearchFn  func(index string, body []byte) (Response, error)
}

var okEmpty = Response{Status: 200, Body: []byte(`{}`)}

func (f *fakeEngine) Name() string { return "fake" }
func (f *fakeEngine) Bulk(_ context.Context, b []byte) (Response, error) {
	return f.BulkFn(b)
}
func (f *fakeEngine) MGet(_ context.Context, index string, b []byte) (Response, error) {
	if f.MGetFn == nil {
		return Response{Status: 200, Body: []byte(`{"docs":[]}`)}, nil
	}
	return f.MGetFn(index, b)
}
func (f *fakeEngine) Get(context.Context, string, string) (Response, error) { return okEmpty, nil }
func (f *fakeEngine) Search(_ context.Context, index string, b []byte) (Response, error) {
	if f.SearchFn == nil {
		return okEmpty, nil
	}
	return f.SearchFn(index, b)
}
func (f *fakeEngine) PutIndexTemplate(context.Context, string, []byte) (Response, error) {
	return okEmpty, nil
}
func (f *fakeEngine) DeleteIndexTemplate(context.Context, string) (Response, error) {
	return okEmpty, nil
}
func (f *fakeEngine) CreateIndex(context.Context, string, []byte) (Response, error) {
	return okEmpty, nil
}
func (f *fakeEngine) DeleteIndex(context.Context, string) (Response, error) { return okEmpty, nil }
func (f *fakeEngine) Aliases(_ context.Context, p string) (Response, error) {
	if f.AliasesFn == nil {
		return okEmpty, nil
	}
	return f.AliasesFn(p)
}

// Indices answers as Aliases: an alias listing is GET /<pattern> without
// mappings and settings.
func (f *fakeEngine) Indices(ctx context.Context, p string) (Response, error) {
	return f.Aliases(ctx, p)
}
func (f *fakeEngine) PutMapping(context.Context, string, []byte) (Response, error) {
	return okEmpty, nil
}
func (f *fakeEngine) UpdateAliases(context.Context, []byte) (Response, error) { return okEmpty, nil }
func (f *fakeEngine) Refresh(context.Context, string) (Response, error)       { return okEmpty, nil }

// bulkOp is one parsed action of a bulk body.
type bulkOp struct {
	Index, ID string
	Version   int64
	Doc       Order
}

func parseBulk(t testing.TB, body []byte) []bulkOp {
	t.Helper()
	var ops []bulkOp
	sc := bufio.NewScanner(bytes.NewReader(body))
	sc.Buffer(nil, 64<<20)
	for sc.Scan() {
		var a struct {
			Index struct {
				Index       string `json:"_index"`
				ID          string `json:"_id"`
				Version     int64  `json:"version"`
				VersionType string `json:"version_type"`
			} `json:"index"`
		}
		if err := json.Unmarshal(sc.Bytes(), &a); err != nil || a.Index.VersionType != "external" {
			t.Fatalf("action line %s: %v (version_type %q)", sc.Bytes(), err, a.Index.VersionType)
		}
		if !sc.Scan() {
			t.Fatal("action without source")
		}
		op := bulkOp{Index: a.Index.Index, ID: a.Index.ID, Version: a.Index.Version}
		if err := json.Unmarshal(sc.Bytes(), &op.Doc); err != nil {
			t.Fatal(err)
		}
		ops = append(ops, op)
	}
	return ops
}

// bulkAnswer answers ops with the given item statuses (default 201).
func bulkAnswer(ops []bulkOp, status func(bulkOp) (int, string)) Response {
	var items []string
	for _, op := range ops {
		st, typ := 201, ""
		if status != nil {
			st, typ = status(op)
		}
		e := ""
		if typ != "" {
			e = fmt.Sprintf(`,"error":{"type":%q,"reason":"test"}`, typ)
		}
		items = append(items, fmt.Sprintf(`{"index":{"_index":%q,"_id":%q,"status":%d%s}}`, op.Index, op.ID, st, e))
	}
	return Response{Status: 200, Body: []byte(`{"errors":true,"items":[` + strings.Join(items, ",") + `]}`)}
}

func recs(es ...schemas.Envelope) []consumers.Record {
	out := make([]consumers.Record, len(es))
	for i, e := range es {
		out[i] = consumers.Record{Offset: int64(i), Event: e}
	}
	return out
}

func newFakeSink(t *testing.T, f *fakeEngine) *Sink {
	t.Helper()
	s, err := NewSink(SinkConfig{Config: Config{Engine: f, Prefix: "t"}, Generation: 1, RetryTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestSinkFoldsABatch(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var sent []bulkOp
	f := &fakeEngine{BulkFn: func(b []byte) (Response, error) {
		ops := parseBulk(t, b)
		mu.Lock()
		sent = append(sent, ops...)
		mu.Unlock()
		return bulkAnswer(ops, nil), nil
	}}
	f.MGetFn = func(string, []byte) (Response, error) {
		t.Error("mget for a batch that starts every order with order.placed")
		return okEmpty, nil
	}
	s := newFakeSink(t, f)
	sale := placedSale("536365", schemas.KindSale)
	batch := recs(
		ev(t, "a", 1, sale), ev(t, "b", 1, placedSale("536366", schemas.KindSale)),
		ev(t, "a", 2, &schemas.OrderPaid{Amount: gbp("35.642")}),
		ev(t, "a", 2, &schemas.OrderPaid{Amount: gbp("35.642")}), // redelivered within the batch
	)
	if err := s.Write(context.Background(), batch); err != nil {
		t.Fatal(err)
	}
	if len(sent) != 2 {
		t.Fatalf("%d index operations, want 2 (one per order): %+v", len(sent), sent)
	}
	for _, op := range sent {
		if op.Index != "t_v1" {
			t.Errorf("index %s, want t_v1", op.Index)
		}
		switch op.ID {
		case "a":
			if op.Version != 2 || op.Doc.Version != 2 || op.Doc.Status != schemas.StatusPaid || !op.Doc.Paid.Equal(dec("35.642")) {
				t.Errorf("order a: version %d, doc %+v; want v2 paid", op.Version, op.Doc)
			}
		case "b":
			if op.Version != 1 || op.Doc.Status != schemas.StatusPlaced {
				t.Errorf("order b: %+v", op)
			}
		}
	}
	if st := s.Stats(); st.Documents != 2 {
		t.Errorf("stats %+v", st)
	}
}

func TestSinkReadsTheCurrentDocument(t *testing.T) {
	t.Parallel()
	cur := Order{OrderID: "a", OrderNumber: "536365", Kind: schemas.KindSale, Status: schemas.StatusPaid, Total: dec("35.642"), Paid: dec("35.642"), Version: 2, Lines: []Line{{LineNo: 1, StockCode: "X"}}}
	src, _ := json.Marshal(cur)
	var sent []bulkOp
	f := &fakeEngine{
		MGetFn: func(index string, body []byte) (Response, error) {
			if index != "t_v1" || !strings.Contains(string(body), `"a"`) || strings.Contains(string(body), `"c"`) {
				t.Errorf("mget %s %s", index, body)
			}
			return Response{Status: 200, Body: []byte(`{"docs":[{"_id":"a","found":true,"_version":2,"_source":` + string(src) + `},{"_id":"z","found":false}]}`)}, nil
		},
		BulkFn: func(b []byte) (Response, error) {
			sent = parseBulk(t, b)
			return bulkAnswer(sent, nil), nil
		},
	}
	s := newFakeSink(t, f)
	err := s.Write(context.Background(), recs(
		ev(t, "a", 2, &schemas.OrderPaid{Amount: gbp("35.642")}), // already applied
		ev(t, "a", 3, &schemas.OrderRefunded{Amount: gbp("35.642")}),
		ev(t, "c", 1, placedSale("536367", schemas.KindSale)),
	))
	if err != nil {
		t.Fatal(err)
	}
	if len(sent) != 2 || sent[0].ID != "a" || sent[0].Version != 3 || sent[0].Doc.Status != schemas.StatusRefunded || len(sent[0].Doc.Lines) != 1 {
		t.Errorf("sent %+v, want order a at v3 refunded, built on the document read", sent)
	}
	if st := s.Stats(); st.Stale != 1 {
		t.Errorf("stale = %d, want 1 (paid v2 already in the document)", st.Stale)
	}
}

func TestSinkClassifiesItems(t *testing.T) {
	t.Parallel()
	attempts := 0
	f := &fakeEngine{BulkFn: func(b []byte) (Response, error) {
		attempts++
		ops := parseBulk(t, b)
		if attempts == 1 {
			return Response{Status: 429, Body: []byte(`{"error":{"type":"rejected_execution_exception","reason":"queue full"}}`)}, nil
		}
		return bulkAnswer(ops, func(op bulkOp) (int, string) {
			switch {
			case op.ID == "dup":
				return 409, "version_conflict_engine_exception"
			case op.ID == "bad":
				return 400, "mapper_parsing_exception"
			case op.ID == "busy" && attempts == 2:
				return 503, "unavailable_shards_exception"
			}
			return 201, ""
		}), nil
	}}
	s := newFakeSink(t, f)
	batch := recs(
		ev(t, "dup", 1, placedSale("1", schemas.KindSale)),
		ev(t, "bad", 1, placedSale("2", schemas.KindSale)),
		ev(t, "busy", 1, placedSale("3", schemas.KindSale)),
		ev(t, "bad", 2, &schemas.OrderPaid{Amount: gbp("35.642")}),
		ev(t, "orphan", 2, &schemas.OrderPaid{Amount: gbp("1")}),
	)
	batch = append(batch, consumers.Record{Offset: 9, Event: schemas.Envelope{EventType: "order.exploded", SchemaVersion: 1, AggregateID: "x", AggregateVersion: 1}})
	err := s.Write(context.Background(), batch)
	var rej *consumers.RejectedError
	if !errors.As(err, &rej) {
		t.Fatalf("err = %v, want *consumers.RejectedError", err)
	}
	for _, i := range []int{1, 3, 4, 5} {
		if rej.Rejected[i] == nil {
			t.Errorf("record %d not rejected", i)
		}
	}
	if len(rej.Rejected) != 4 {
		t.Errorf("rejected %v, want records 1, 3 (mapping error), 4 (no order.placed), 5 (unknown type)", rej.Rejected)
	}
	if !strings.Contains(rej.Rejected[1].Error(), "mapper_parsing_exception") || !errors.Is(rej.Rejected[4], errNoBase) {
		t.Errorf("reasons: %v / %v", rej.Rejected[1], rej.Rejected[4])
	}
	if st := s.Stats(); attempts != 3 || st.Conflicts != 1 || st.Documents != 1 || st.Retries != 2 {
		t.Errorf("attempts %d, stats %+v; want 3 attempts (429, then 503 item), 1 conflict, 1 document, 2 retries", attempts, st)
	}
}

func TestSinkGivesUpTransiently(t *testing.T) {
	t.Parallel()
	f := &fakeEngine{BulkFn: func([]byte) (Response, error) { return Response{}, errors.New("connection refused") }}
	s, err := NewSink(SinkConfig{Config: Config{Engine: f, Prefix: "t"}, Generation: 1, RetryTimeout: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	err = s.Write(context.Background(), recs(ev(t, "a", 1, placedSale("1", schemas.KindSale))))
	var rej *consumers.RejectedError
	if err == nil || errors.As(err, &rej) || !strings.Contains(err.Error(), "connection refused") {
		t.Errorf("err = %v, want a transient error naming the cause", err)
	}
}

func TestSinkFollowsTheWriteAlias(t *testing.T) {
	t.Parallel()
	indexes := map[string]bool{}
	f := &fakeEngine{
		AliasesFn: func(p string) (Response, error) {
			if p != "t_v*" {
				t.Errorf("aliases of %s", p)
			}
			return Response{Status: 200, Body: []byte(`{"t_v1":{"aliases":{"t":{},"t_write":{"is_write_index":true}}},
				"t_v2":{"aliases":{"t_write":{"is_write_index":false}}}, "t_v0x":{"aliases":{}}, "t_v3":{"aliases":{}}}`)}, nil
		},
		BulkFn: func(b []byte) (Response, error) {
			ops := parseBulk(t, b)
			for _, op := range ops {
				indexes[op.Index] = true
			}
			return bulkAnswer(ops, nil), nil
		},
	}
	s, err := NewSink(SinkConfig{Config: Config{Engine: f, Prefix: "t"}})
	if err != nil {
		t.Fatal(err)
	}
	// A paid without a document: rejected by the serving generation, skipped
	// in the one being built (its rebuild applies it in order).
	err = s.Write(context.Background(), recs(ev(t, "a", 1, placedSale("1", schemas.KindSale)), ev(t, "b", 2, &schemas.OrderPaid{Amount: gbp("1")})))
	var rej *consumers.RejectedError
	if !errors.As(err, &rej) || len(rej.Rejected) != 1 || rej.Rejected[1] == nil {
		t.Errorf("err = %v, want record 1 rejected", err)
	}
	if !indexes["t_v1"] || !indexes["t_v2"] || indexes["t_v3"] || len(indexes) != 2 {
		t.Errorf("wrote %v, want t_v1 and t_v2 (the write alias)", indexes)
	}
}

func TestChunks(t *testing.T) {
	t.Parallel()
	mk := func(sizes ...int) []item {
		var out []item
		for _, n := range sizes {
			out = append(out, item{source: make([]byte, n)})
		}
		return out
	}
	tests := []struct {
		name string
		give []item
		max  int
		want []int // items per chunk
	}{
		{"empty", nil, 1000, nil},
		{"fits", mk(100, 100, 100), 1000, []int{3}},
		{"splits", mk(400, 400, 400), 1000, []int{2, 1}},
		{"oversized item alone", mk(100, 5000, 100), 1000, []int{1, 1, 1}},
	}
	for _, tt := range tests {
		got := chunks(tt.give, tt.max)
		var n []int
		for _, c := range got {
			n = append(n, len(c))
			size := 0
			for _, it := range c {
				size += it.size()
			}
			if len(c) > 1 && size > tt.max {
				t.Errorf("%s: chunk of %d bytes > %d", tt.name, size, tt.max)
			}
		}
		if fmt.Sprint(n) != fmt.Sprint(tt.want) {
			t.Errorf("%s: chunks %v, want %v", tt.name, n, tt.want)
		}
	}
}
