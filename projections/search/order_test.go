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
			admin, sink, q := newTestSinkQuery(t, eng)
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
			err := sink.Write(ctx, recs(ev(t, "order-2", 2, &schemas.OrderPaid{Amount: gbp("1")})))
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

// checkGenerationTimes: after generation 2 was cut over at or after cut,
// both generations have a creation time before it, 1 its cutover (by
// Setup) before it and its retirement after it, 2 its cutover after it
// and no retirement; a later stamp keeps the earlier ones; the read
// model's Generations reports the same times.
func checkGenerationTimes(ctx context.Context, t *testing.T, cfg Config, cut time.Time, gens []GenerationIndex) {
	t.Helper()
	now := time.Now()
	in := func(x time.Time, from, to time.Time) bool {
		return !x.Before(from.Add(-time.Second)) && !x.After(to.Add(time.Second))
	}
	start := cut.Add(-3 * time.Minute)
	g1, g2 := gens[0], gens[1]
	if !in(g1.CreatedAt, start, cut) || !in(g2.CreatedAt, start, cut) {
		t.Errorf("created %v and %v, want before the cutover at %v", g1.CreatedAt, g2.CreatedAt, cut)
	}
	if !in(g1.CutoverAt, g1.CreatedAt, cut) || !in(g1.RetiredAt, cut, now) {
		t.Errorf("generation 1: cutover %v, retired %v; want Setup's cutover, retired at the cutover %v", g1.CutoverAt, g1.RetiredAt, cut)
	}
	if !in(g2.CutoverAt, cut, now) || !g2.RetiredAt.IsZero() {
		t.Errorf("generation 2: cutover %v, retired %v; want cut over at %v, never retired", g2.CutoverAt, g2.RetiredAt, cut)
	}
	if g1.meta[metaCutoverAt] == nil || g1.meta[metaRetiredAt] == nil {
		t.Errorf("generation 1's _meta %v: recording its retirement lost its cutover (a mapping update replaces _meta whole)", g1.meta)
	}
	rm, err := NewReadModel(cfg)
	if err != nil {
		t.Fatal(err)
	}
	pg, err := rm.Generations(ctx)
	if err != nil || len(pg) != 2 {
		t.Fatalf("read model generations %+v, %v", pg, err)
	}
	if !pg[0].CreatedAt.Equal(g1.CreatedAt) || !pg[0].CutoverAt.Equal(g1.CutoverAt) || !pg[0].RetiredAt.Equal(g1.RetiredAt) || !pg[1].CutoverAt.Equal(g2.CutoverAt) {
		t.Errorf("read model generations %+v, want the admin's times %+v", pg, gens)
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
			beforeCutover := time.Now()
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
			// The times, as analytics reports them: creation from the
			// index, the cutover (Setup's of 1, then 2's) and 1's
			// retirement from its _meta, beside the template's keys.
			checkGenerationTimes(ctx, t, cfg, beforeCutover, gens)
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
			gens, err = admin.Generations(ctx)
			if err != nil || len(gens) != 2 || gens[0].Retired || !gens[1].Retired || !gens[1].Writing {
				t.Errorf("after rollback: %+v, %v; want 2 retired (and written), 1 not", gens, err)
			} else if !gens[0].CutoverAt.After(gens[0].RetiredAt) || !gens[1].RetiredAt.After(gens[1].CutoverAt) {
				t.Errorf("after rollback: 1 cut over %v (retired %v), 2 retired %v (cut over %v); want the rollback's times latest",
					gens[0].CutoverAt, gens[0].RetiredAt, gens[1].RetiredAt, gens[1].CutoverAt)
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

// TestGetByNumberExactCase: order numbers are found case-insensitively,
// but the write side keeps "c536379" and "C536379" apart, so a number
// spelt exactly as one of them gets that one, whichever the engine ranks
// first.
func TestGetByNumberExactCase(t *testing.T) {
	for name, eng := range testEngines(t) {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
			defer cancel()
			admin, sink, q := newTestSinkQuery(t, eng)
			if err := sink.Write(ctx, recs(
				ev(t, "upper", 1, placedSale("C536379", schemas.KindSale)),
				ev(t, "lower", 1, placedSale("c536379", schemas.KindSale)),
				ev(t, "only", 1, placedSale("C536380", schemas.KindSale)),
			)); err != nil {
				t.Fatal(err)
			}
			if err := admin.Refresh(ctx); err != nil {
				t.Fatal(err)
			}
			for number, want := range map[string]string{"C536379": "upper", "c536379": "lower", "c536380": "only", "C536380": "only"} {
				o, err := q.Get(ctx, number)
				if err != nil || o.OrderID != want {
					t.Errorf("Get(%q) = order %q, %v; want %q", number, o.OrderID, err, want)
				}
			}
		})
	}
}
