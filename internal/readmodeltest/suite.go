package readmodeltest

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/orderstream/orderstream/consumers"
	"github.com/orderstream/orderstream/internal/testfixture"
	"github.com/orderstream/orderstream/producer/csvimport"
	"github.com/orderstream/orderstream/schemas"
	"github.com/shopspring/decimal"
)

// timeout bounds each test of the suite (each runs in seconds).
const timeout = 2 * time.Minute

// Run runs the contract suite against rm as parallel subtests of t, each on
// a fresh instance: Redelivery, Ordering, Generations, Rejections, Transient
// and Exactness (see the package doc). Each takes seconds; Exactness also
// loads the real file's events once per test binary (testfixture.RealEvents).
func Run(t *testing.T, rm ReadModel) {
	tests := []struct {
		name string
		run  func(*testing.T, ReadModel)
	}{
		{"Redelivery", testRedelivery},
		{"Ordering", testOrdering},
		{"Generations", testGenerations},
		{"Rejections", testRejections},
		{"Transient", testTransient},
		{"Exactness", testExactness},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tt.run(t, rm)
		})
	}
}

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	t.Cleanup(cancel)
	return ctx
}

// step is one command of a story after order.placed.
type step func(*story) error

var pay, ship, cancel, refundAll, refundPart step = (*story).pay, (*story).ship, (*story).cancel, (*story).refundAll, (*story).refundPart

// tell returns the events of order id placed with lines of the given
// quantities, then each step in turn.
func tell(t *testing.T, id string, kind schemas.Kind, qty []int64, steps ...step) []schemas.Envelope {
	t.Helper()
	s, err := newStory(id, kind, qty...)
	for _, f := range steps {
		if err == nil {
			err = f(s)
		}
	}
	if err != nil {
		t.Fatalf("story %s: %v", id, err)
	}
	return s.events
}

// stories returns the events of one order per lifecycle the write side
// allows, order by order.
func stories(t *testing.T) []schemas.Envelope {
	t.Helper()
	return slices.Concat(
		tell(t, "sale-placed", schemas.KindSale, []int64{4}),
		tell(t, "sale-shipped", schemas.KindSale, []int64{6, 6, 2}, pay, ship),
		tell(t, "sale-refunded", schemas.KindSale, []int64{1, 2}, pay, ship, refundAll),
		tell(t, "sale-partly-refunded", schemas.KindSale, []int64{3, 1}, pay, refundPart),
		tell(t, "sale-shipped-refunded-in-parts", schemas.KindSale, []int64{2, 5}, pay, ship, refundPart, refundPart, refundAll),
		tell(t, "sale-cancelled", schemas.KindSale, []int64{3}, pay, cancel),
		tell(t, "credit-note", schemas.KindCreditNote, []int64{2, 1}, refundAll),
		tell(t, "adjustment", schemas.KindAdjustment, []int64{1}),
	)
}

func fold(t *testing.T, events []schemas.Envelope) Facts {
	t.Helper()
	f, err := Fold(events)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func write(ctx context.Context, t *testing.T, s consumers.Sink, events ...schemas.Envelope) {
	t.Helper()
	if err := s.Write(ctx, Records(0, events...)); err != nil {
		t.Fatalf("write %d event(s): %v", len(events), err)
	}
}

// expect fails t unless generation n (0: what readers see) holds want.
func expect(ctx context.Context, t *testing.T, in Instance, n uint32, want Facts, after string) {
	t.Helper()
	got, err := in.Facts(ctx, n)
	if err != nil {
		t.Fatalf("%s: facts of generation %d: %v", after, n, err)
	}
	if d := diff(want, got); d != "" {
		t.Fatalf("%s: generation %d (0 = serving): %s", after, n, d)
	}
}

// testRedelivery: the same batch twice, a batch holding every event twice
// and overlapping batches leave the facts of one delivery.
func testRedelivery(t *testing.T, rm ReadModel) {
	ctx := testContext(t)
	in := rm.New(t)
	sink := in.Sink(t, 1)
	events := stories(t)
	want := fold(t, events)
	write(ctx, t, sink, events...)
	expect(ctx, t, in, 1, want, "one delivery")
	write(ctx, t, sink, events...)
	expect(ctx, t, in, 1, want, "the same batch again")
	write(ctx, t, sink, append(slices.Clone(events), events...)...)
	expect(ctx, t, in, 1, want, "a batch holding every event twice")
	half := len(events) / 2
	write(ctx, t, sink, events[:half+3]...)
	write(ctx, t, sink, events[half-3:]...)
	expect(ctx, t, in, 1, want, "overlapping batches")
	expect(ctx, t, in, 0, want, "overlapping batches")
}

// testOrdering: events of an order apply in version order whatever the
// batch order, and an older event after a newer one changes nothing.
func testOrdering(t *testing.T, rm ReadModel) {
	ctx := testContext(t)
	in := rm.New(t)
	sink := in.Sink(t, 1)
	s := tell(t, "in-order", schemas.KindSale, []int64{1, 2}, pay, ship, refundAll)
	v1, v2, v3, v4 := s[0], s[1], s[2], s[3]
	write(ctx, t, sink, v1)
	write(ctx, t, sink, v2)
	write(ctx, t, sink, v3)
	want := fold(t, s[:3])
	expect(ctx, t, in, 1, want, "v1, v2, v3 in turn")
	write(ctx, t, sink, v2)
	write(ctx, t, sink, v1)
	expect(ctx, t, in, 1, want, "v2 then v1 after v3")
	write(ctx, t, sink, v3, v2, v1)
	expect(ctx, t, in, 1, want, "v3, v2, v1 in one batch after v3")
	write(ctx, t, sink, v4, v3)
	want = fold(t, s)
	expect(ctx, t, in, 1, want, "v4 then v3 in one batch")
	write(ctx, t, sink, v1, v2)
	expect(ctx, t, in, 1, want, "v1, v2 after v4")

	// A whole order in one batch, newest first.
	r := tell(t, "reversed", schemas.KindSale, []int64{5}, pay, ship)
	write(ctx, t, sink, r[2], r[1], r[0])
	want = fold(t, slices.Concat(s, r))
	expect(ctx, t, in, 1, want, "an order's events newest first in one batch")
}

// testGenerations: a sink of generation 2 leaves generation 1 alone;
// Cutover and Rollback switch what readers see.
func testGenerations(t *testing.T, rm ReadModel) {
	ctx := testContext(t)
	in := rm.New(t)
	events := stories(t)
	half := len(events) / 2
	for half < len(events) && events[half].AggregateVersion != 1 {
		half++ // split between orders
	}
	old, next := events[:half], events[half:]
	write(ctx, t, in.Sink(t, 1), old...)
	want1, want2 := fold(t, old), fold(t, next)
	if err := in.CreateGeneration(ctx, 2); err != nil {
		t.Fatalf("create generation 2: %v", err)
	}
	expect(ctx, t, in, 2, Facts{}, "generation 2 created")
	write(ctx, t, in.Sink(t, 2), next...)
	expect(ctx, t, in, 1, want1, "writes to generation 2")
	expect(ctx, t, in, 2, want2, "writes to generation 2")
	expect(ctx, t, in, 0, want1, "writes to generation 2, before the cutover")
	if err := in.Cutover(ctx, 2); err != nil {
		t.Fatalf("cutover to 2: %v", err)
	}
	expect(ctx, t, in, 0, want2, "cutover to 2")
	n, err := in.Rollback(ctx)
	if err != nil || n != 1 {
		t.Fatalf("rollback: generation %d, %v; want 1", n, err)
	}
	expect(ctx, t, in, 0, want1, "rollback to 1")
	expect(ctx, t, in, 2, want2, "rollback to 1")
}

// testRejections: each bad event is rejected permanently with the error
// that names its fault, the rest of its batch is durable, and the rejected
// event changes nothing.
func testRejections(t *testing.T, rm ReadModel) {
	ctx := testContext(t)
	in := rm.New(t)
	sink := in.Sink(t, 1)
	good := stories(t)
	placed := good[0] // order.placed of sale-placed, v1

	malformed := placed
	malformed.AggregateID, malformed.Payload = "malformed", []byte(`{"order_number": 536365}`)
	unknown := placed
	unknown.AggregateID, unknown.SchemaVersion = "unknown-version", 99
	huge, err := schemas.NewEnvelope(placed.AggregateID, 2, t0.Add(time.Hour),
		&schemas.OrderPaid{Amount: gbp("10000000000000000")}, schemas.Metadata{})
	if err != nil {
		t.Fatal(err)
	}
	// order.placed events no writer emits, produced to the topic by hand:
	// refused by every read model alike (schemas.CheckPlaced), not stored
	// by one and dead-lettered by the other.
	inconsistent := func(id string, edit func(*schemas.OrderPlaced)) schemas.Envelope {
		t.Helper()
		p, err := placed.Decode()
		if err != nil {
			t.Fatal(err)
		}
		pl := *p.(*schemas.OrderPlaced)
		pl.Lines = slices.Clone(pl.Lines)
		edit(&pl)
		e, err := schemas.NewEnvelope(id, 1, placed.OccurredAt, &pl, schemas.Metadata{})
		if err != nil {
			t.Fatal(err)
		}
		return e
	}
	wrongTotal := inconsistent("wrong-total", func(p *schemas.OrderPlaced) {
		p.Total = schemas.NewMoney(p.Total.Amount.Add(decimal.New(1, 0)), p.Currency)
	})
	lineTwice := inconsistent("line-twice", func(p *schemas.OrderPlaced) {
		p.Lines = append(p.Lines, p.Lines[0])
		p.Total = schemas.NewMoney(p.Total.Amount.Mul(decimal.New(2, 0)), p.Currency)
	})
	hugeQuantity := inconsistent("huge-quantity", func(p *schemas.OrderPlaced) {
		p.Lines[0].Quantity, p.Lines[0].UnitPrice = schemas.MaxQuantity+1, gbp("0")
		p.Total = gbp("0")
	})
	tests := []struct {
		name string
		give schemas.Envelope
		want error
	}{
		{"malformed payload", malformed, schemas.ErrInvalidEvent},
		{"unknown schema version", unknown, schemas.ErrUnknownEvent},
		{"amount out of range", huge, schemas.ErrOutOfRange},
		{"total not the sum of the lines", wrongTotal, schemas.ErrInvalidEvent},
		{"line number repeated", lineTwice, schemas.ErrInvalidEvent},
		{"quantity out of range at price 0", hugeQuantity, schemas.ErrOutOfRange},
	}
	var written []schemas.Envelope
	for i, tt := range tests {
		// Each batch: a bad event between good ones.
		batch := append([]schemas.Envelope{good[2*i]}, tt.give, good[2*i+1])
		err := sink.Write(ctx, Records(0, batch...))
		var rej *consumers.RejectedError
		if !errors.As(err, &rej) {
			t.Fatalf("%s: Write returned %v, want a *consumers.RejectedError", tt.name, err)
		}
		if len(rej.Rejected) != 1 || rej.Rejected[1] == nil {
			t.Fatalf("%s: rejected %v, want record #1 only", tt.name, rej.Rejected)
		}
		if got := rej.Rejected[1]; !errors.Is(got, tt.want) {
			t.Errorf("%s: rejection %q does not wrap %q", tt.name, got, tt.want)
		}
		if sentinel := rm.ErrRejected(); sentinel != nil && !errors.Is(rej.Rejected[1], sentinel) {
			t.Errorf("%s: rejection %q does not wrap %q", tt.name, rej.Rejected[1], sentinel)
		}
		written = append(written, good[2*i], good[2*i+1])
	}
	// The good events are durable, the bad ones left no trace (sale-placed
	// stays at v1).
	expect(ctx, t, in, 1, fold(t, written), "batches with a rejected event")
}

// testTransient: a sink whose server does not answer fails with an error
// the runtime retries (not a rejection), without waiting for ctx.
func testTransient(t *testing.T, rm ReadModel) {
	ctx := testContext(t)
	sink := rm.Unreachable(t)
	err := sink.Write(ctx, Records(0, stories(t)...))
	var rej *consumers.RejectedError
	switch {
	case err == nil:
		t.Fatal("Write to an unreachable server returned nil")
	case errors.As(err, &rej):
		t.Fatalf("Write to an unreachable server: %v, want a transient error, not a rejection", err)
	case ctx.Err() != nil:
		t.Fatalf("Write to an unreachable server gave up only when the test's context ended: %v", err)
	}
}

// exactSlice is the number of leading events of the real file the
// exactness test writes (about 700 documents, sales and credit notes), with
// the events of its 3 adjustments.
const exactSlice = 1500

// testExactness: every order of a slice of the real file's events, written
// in batches, holds the write side's facts.
func testExactness(t *testing.T, rm ReadModel) {
	ctx := testContext(t)
	all := testfixture.RealEvents(t)
	events := slices.Clone(all[:exactSlice])
	adjustments := map[string]bool{}
	for _, n := range []string{"A563185", "A563186", "A563187"} {
		adjustments[csvimport.OrderID(n)] = true
	}
	for _, e := range all[exactSlice:] {
		if adjustments[e.AggregateID] {
			events = append(events, e)
		}
	}
	want := fold(t, events)
	kinds := map[schemas.Status]int{}
	for _, f := range want {
		kinds[f.Status]++
	}
	if kinds[schemas.StatusPaid] == 0 || kinds[schemas.StatusRefunded] == 0 || kinds[schemas.StatusPlaced] < len(adjustments) {
		t.Fatalf("the slice's orders by status %v: want paid sales, refunded credit notes and placed adjustments", kinds)
	}
	in := rm.New(t)
	sink := in.Sink(t, 1)
	const batch = 500
	for i := 0; i < len(events); i += batch {
		end := min(i+batch, len(events))
		if err := sink.Write(ctx, Records(int64(i), events[i:end]...)); err != nil {
			t.Fatalf("write events %d..%d: %v", i, end, err)
		}
	}
	expect(ctx, t, in, 1, want, "the real slice")
	expect(ctx, t, in, 0, want, "the real slice")
}
