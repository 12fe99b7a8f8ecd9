package search

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/orderstream/orderstream/consumers"
	"github.com/orderstream/orderstream/schemas"
)

// TestOrderSafety checks, on each adapter against the real engine, that
// redelivered and out-of-order events (an older one after a newer one, in
// separate batches and within one batch) leave the newest state, that a
// version conflict is counted and not an error, and that an event with no
// order.placed before it is rejected.
func TestOrderSafety(t *testing.T) {
	for name, eng := range testEngines(t) {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
			defer cancel()
			cfg, admin := newTestModel(t, eng)
			sink, err := NewSink(SinkConfig{Config: cfg})
			if err != nil {
				t.Fatal(err)
			}
			q, err := NewQuery(cfg)
			if err != nil {
				t.Fatal(err)
			}
			sale := placedSale("536365", schemas.KindSale)
			v1 := ev(t, "order-1", 1, sale)
			v2 := ev(t, "order-1", 2, &schemas.OrderPaid{Amount: gbp("35.642")})
			v3 := ev(t, "order-1", 3, &schemas.OrderShipped{Carrier: "DHL"})
			v4 := ev(t, "order-1", 4, &schemas.OrderRefunded{Amount: gbp("35.642")})
			write := func(es ...schemas.Envelope) {
				t.Helper()
				if err := sink.Write(ctx, recs(es...)); err != nil {
					t.Fatalf("write: %v", err)
				}
			}
			expect := func(version int64, status schemas.Status) {
				t.Helper()
				o, err := q.Get(ctx, "order-1")
				if err != nil {
					t.Fatal(err)
				}
				if o.Version != version || o.Status != status || len(o.Lines) != 3 {
					t.Fatalf("order-1 is v%d %s with %d lines, want v%d %s with 3 lines", o.Version, o.Status, len(o.Lines), version, status)
				}
			}
			write(v1)
			write(v2)
			write(v3)
			expect(3, schemas.StatusShipped)

			// Older events after newer ones, alone and together.
			write(v2)
			write(v1)
			write(v2, v1)
			expect(3, schemas.StatusShipped)

			// The newer event, then the older one again in the same batch.
			write(v4, v3)
			expect(4, schemas.StatusRefunded)
			write(v1, v2, v3, v4)
			expect(4, schemas.StatusRefunded)
			if st := sink.Stats(); st.Conflicts == 0 || st.Stale == 0 || st.Documents != 4 {
				t.Errorf("stats %+v, want 4 documents and some conflicts and already-applied events", st)
			}

			// An event whose order.placed never arrived cannot be applied.
			err = sink.Write(ctx, recs(ev(t, "order-2", 2, &schemas.OrderPaid{Amount: gbp("1")})))
			var rej *consumers.RejectedError
			if !errors.As(err, &rej) || !errors.Is(rej.Rejected[0], errNoBase) {
				t.Errorf("paid without placed: %v, want a rejection", err)
			}
			if _, err := q.Get(ctx, "order-2"); !errors.Is(err, ErrNotFound) {
				t.Errorf("order-2: %v, want ErrNotFound", err)
			}
			if err := admin.Refresh(ctx); err != nil {
				t.Fatal(err)
			}
			res, err := q.Search(ctx, Request{Product: "85123A"})
			if err != nil {
				t.Fatal(err)
			}
			if res.Total != 1 || res.Hits[0].MatchedLines != 2 || res.Hits[0].Status != schemas.StatusRefunded {
				t.Errorf("search 85123A: total %d, hits %+v", res.Total, res.Hits)
			}
		})
	}
}

// TestGenerations checks the rebuild path on each adapter: a new generation
// receives the daemon's writes, a sink bound to it fills it, cutover swaps
// the read alias atomically, rollback returns to the old one (kept current),
// and drop refuses the serving generation.
func TestGenerations(t *testing.T) {
	for name, eng := range testEngines(t) {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
			defer cancel()
			cfg, admin := newTestModel(t, eng)
			daemon, err := NewSink(SinkConfig{Config: cfg})
			if err != nil {
				t.Fatal(err)
			}
			q, err := NewQuery(cfg)
			if err != nil {
				t.Fatal(err)
			}
			a1 := ev(t, "a", 1, placedSale("1", schemas.KindSale))
			a2 := ev(t, "a", 2, &schemas.OrderPaid{Amount: gbp("35.642")})
			b1 := ev(t, "b", 1, placedSale("2", schemas.KindSale))
			b2 := ev(t, "b", 2, &schemas.OrderPaid{Amount: gbp("35.642")})
			if err := daemon.Write(ctx, recs(a1, b1)); err != nil {
				t.Fatal(err)
			}
			if err := admin.CreateGeneration(ctx, 2); err != nil {
				t.Fatal(err)
			}
			if err := admin.CreateGeneration(ctx, 2); err == nil {
				t.Error("creating generation 2 twice succeeded")
			}
			// Live: a's paid goes to both generations; generation 2 has no
			// document of a yet, so it is skipped there (the rebuild applies
			// it in order), not rejected.
			if err := daemon.Write(ctx, recs(a2)); err != nil {
				t.Fatal(err)
			}
			rebuild, err := NewSink(SinkConfig{Config: cfg, Generation: 2})
			if err != nil {
				t.Fatal(err)
			}
			if err := rebuild.Write(ctx, recs(a1, a2, b1)); err != nil {
				t.Fatal(err)
			}
			if err := daemon.Write(ctx, recs(b2)); err != nil {
				t.Fatal(err)
			}
			if err := rebuild.Write(ctx, recs(b2)); err != nil {
				t.Fatal(err)
			}
			if st := rebuild.Stats(); st.Conflicts+st.Stale != 1 {
				t.Errorf("rebuild stats %+v: b2 was already written there by the daemon", st)
			}
			if n, _ := admin.Serving(ctx); n != 1 {
				t.Errorf("serving %d before cutover, want 1", n)
			}
			if err := admin.Cutover(ctx, 2); err != nil {
				t.Fatal(err)
			}
			gens, err := admin.Generations(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if len(gens) != 2 || gens[0].Serving || !gens[0].Writing || !gens[1].Serving || !gens[1].Writing || !gens[0].Retired || gens[1].Retired {
				t.Errorf("after cutover: %+v, want 2 serving, 1 retired, both written", gens)
			}
			for _, id := range []string{"a", "b"} {
				o, err := q.Get(ctx, id)
				if err != nil || o.Version != 2 || o.Status != schemas.StatusPaid {
					t.Errorf("order %s in generation 2: %+v, %v", id, o, err)
				}
			}
			if err := admin.DropGeneration(ctx, 2); err == nil {
				t.Error("dropped the serving generation")
			}
			n, err := admin.Rollback(ctx)
			if err != nil || n != 1 {
				t.Fatalf("rollback: %d, %v", n, err)
			}
			if n, _ := admin.Serving(ctx); n != 1 {
				t.Errorf("serving %d after rollback, want 1", n)
			}
			if gens, err := admin.Generations(ctx); err != nil || len(gens) != 2 || gens[0].Retired || !gens[1].Retired || !gens[1].Writing {
				t.Errorf("after rollback: %+v, %v; want 2 retired (and written), 1 not", gens, err)
			}
			o, err := q.Get(ctx, "b")
			if err != nil || o.Version != 2 {
				t.Errorf("order b in generation 1 after rollback: %+v, %v (kept current by the daemon)", o, err)
			}
			if err := admin.Cutover(ctx, 2); err != nil {
				t.Fatal(err)
			}
			if err := admin.DropGeneration(ctx, 1); err != nil {
				t.Fatal(err)
			}
			if _, err := admin.Rollback(ctx); !errors.Is(err, ErrNotFound) {
				t.Errorf("rollback with no older generation: %v, want ErrNotFound", err)
			}
			if err := admin.Cutover(ctx, 7); !errors.Is(err, ErrNotFound) {
				t.Errorf("cutover to a missing generation: %v, want ErrNotFound", err)
			}
		})
	}
}
