package search

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/orderstream/orderstream/consumers"
	"github.com/orderstream/orderstream/internal/testfixture"
	"golang.org/x/sync/errgroup"
)

// BenchmarkIndexing indexes the whole real file (51,797 events, 25,900
// documents) into the search engine twice in one run, through the same
// engine client with the same bulk size and concurrency: once through the
// Sink (decode, fold, external versions, batches of 5,000 records as the
// consumer runtime hands them) and once as a raw bulk of the same,
// prebuilt documents. It reports both rates in documents/s and their ratio.
// The engine adapter is ORDERSTREAM_BENCH_ENGINE (default opensearch).
//
//	go test ./projections/search/ -run '^$' -bench BenchmarkIndexing -benchtime 1x -timeout 30m
func BenchmarkIndexing(b *testing.B) {
	kind := os.Getenv("ORDERSTREAM_BENCH_ENGINE")
	if kind == "" {
		kind = EngineOpenSearch
	}
	eng := testEngines(b)[kind]
	recs := records(testfixture.RealEvents(b))
	docs := foldAll(b, recs)
	for i := 0; i < b.N; i++ {
		cfg, _ := newTestModel(b, eng)
		sink, err := NewSink(SinkConfig{Config: cfg})
		if err != nil {
			b.Fatal(err)
		}
		start := time.Now()
		writeAll(b, sink, recs, consumers.DefaultBatchMaxRecords)
		sinkTime := time.Since(start)

		raw, _ := newTestModel(b, eng)
		items := make([]item, len(docs))
		for j, d := range docs {
			items[j] = item{index: raw.Names().Index(1), id: d.id, version: d.version, source: d.source}
		}
		start = time.Now()
		rawBulk(b, eng, items, DefaultMaxBulkBytes, DefaultMaxInFlight)
		rawTime := time.Since(start)

		sinkRate := float64(len(docs)) / sinkTime.Seconds()
		rawRate := float64(len(docs)) / rawTime.Seconds()
		b.ReportMetric(sinkRate, "sink_docs/s")
		b.ReportMetric(rawRate, "raw_docs/s")
		b.ReportMetric(sinkRate/rawRate, "sink/raw")
		fmt.Printf("search indexing (%s, %d documents, %d events): sink %.0f docs/s (%s), raw bulk %.0f docs/s (%s), sink/raw %.0f%%\n",
			kind, len(docs), len(recs), sinkRate, sinkTime.Round(time.Millisecond), rawRate, rawTime.Round(time.Millisecond), 100*sinkRate/rawRate)
	}
}

type builtDoc struct {
	id      string
	version int64
	source  []byte
}

// foldAll builds the final document of every order, outside the timing.
func foldAll(t testing.TB, recs []consumers.Record) []builtDoc {
	t.Helper()
	byID := map[string]*Order{}
	var ids []string
	for _, r := range recs {
		p, err := r.Event.Decode()
		if err != nil {
			t.Fatal(err)
		}
		cur, seen := byID[r.Event.AggregateID]
		if !seen {
			ids = append(ids, r.Event.AggregateID)
		}
		next, err := apply(cur, r.Event, p)
		if err != nil {
			t.Fatal(err)
		}
		byID[r.Event.AggregateID] = next
	}
	out := make([]builtDoc, len(ids))
	for i, id := range ids {
		src, err := json.Marshal(byID[id])
		if err != nil {
			t.Fatal(err)
		}
		out[i] = builtDoc{id: id, version: byID[id].Version, source: src}
	}
	return out
}

// rawBulk indexes items as plain bulk requests of at most maxBytes, with at
// most inFlight at once, and fails on any item error.
func rawBulk(t testing.TB, eng Engine, items []item, maxBytes, inFlight int) {
	t.Helper()
	g, ctx := errgroup.WithContext(context.Background())
	g.SetLimit(inFlight)
	for _, part := range chunks(items, maxBytes) {
		g.Go(func() error {
			var body []byte
			for _, it := range part {
				body = it.appendTo(body)
			}
			r, err := eng.Bulk(ctx, body)
			if err != nil {
				return err
			}
			if err := check("raw bulk", r); err != nil {
				return err
			}
			var resp struct {
				Errors bool `json:"errors"`
			}
			if err := json.Unmarshal(r.Body, &resp); err != nil || resp.Errors {
				return fmt.Errorf("raw bulk: item errors (%v)", err)
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		t.Fatal(err)
	}
}
