package testfixture

import (
	"errors"
	"fmt"

	"github.com/orderstream/orderstream/schemas"
	"github.com/shopspring/decimal"
)

// maxMismatches bounds the mismatches CheckEvents names one by one.
const maxMismatches = 10

// CheckEvents compares events with e, the figures computed from the CSV:
// what a topic (or an outbox) holds, read back, against the file. events
// may interleave orders but must hold each order's events in version order
// (read a topic per partition in offset order). It checks that
//   - each order's versions run 1, 2, … without gap or repeat;
//   - there are e.Events events: as many order.placed as documents, one
//     per document number, as many order.paid as sales and order.refunded
//     as credit notes (Total.ByKind), and no other type;
//   - every order.placed matches its document (e.Docs): kind, placed time
//     (occurred_at), number of lines and total, exactly;
//   - Σ order.placed totals = Total.Net, Σ order.paid amounts =
//     Total.Gross, and Σ order.refunded amounts = −Total.Returns (a refund
//     is positive), exactly.
//
// It returns every mismatch (the first ten named one by one), nil when all
// hold. Decoding the real file's payloads takes a few seconds.
func (e *Expected) CheckEvents(events []schemas.Envelope) error {
	var errs []error
	bad := 0
	mismatch := func(format string, args ...any) {
		if bad++; bad <= maxMismatches {
			errs = append(errs, fmt.Errorf(format, args...))
		}
	}
	last := map[string]int64{}
	placedOf := map[string]bool{}
	byType := map[string]int{}
	net, paid, refunded := decimal.Zero, decimal.Zero, decimal.Zero
	for i, ev := range events {
		if ev.AggregateVersion != last[ev.AggregateID]+1 {
			mismatch("event %d (%s of order %s): version %d after %d", i, ev.EventType, ev.AggregateID, ev.AggregateVersion, last[ev.AggregateID])
		}
		last[ev.AggregateID] = ev.AggregateVersion
		byType[ev.EventType]++
		p, err := ev.Decode()
		if err != nil {
			mismatch("event %d (%s of order %s): %v", i, ev.EventType, ev.AggregateID, err)
			continue
		}
		switch p := p.(type) {
		case *schemas.OrderPlaced:
			d := e.Docs[p.OrderNumber]
			switch {
			case d == nil:
				mismatch("order.placed of %s: no such document in the file", p.OrderNumber)
			case placedOf[p.OrderNumber]:
				mismatch("order.placed of %s: placed again", p.OrderNumber)
			case d.Kind != p.Kind || !d.PlacedAt.Equal(ev.OccurredAt) || d.Lines != len(p.Lines) || !d.Total.Equal(p.Total.Amount):
				mismatch("order.placed of %s: %s at %s, %d lines, total %s; the file says %s at %s, %d lines, total %s",
					p.OrderNumber, p.Kind, ev.OccurredAt, len(p.Lines), p.Total.Amount, d.Kind, d.PlacedAt, d.Lines, d.Total)
			}
			placedOf[p.OrderNumber] = true
			net = net.Add(p.Total.Amount)
		case *schemas.OrderPaid:
			paid = paid.Add(p.Amount.Amount)
		case *schemas.OrderRefunded:
			refunded = refunded.Add(p.Amount.Amount)
		}
	}
	if bad > maxMismatches {
		errs = append(errs, fmt.Errorf("… and %d more mismatches", bad-maxMismatches))
	}
	want := map[string]int{
		schemas.TypeOrderPlaced:   e.Total.Documents,
		schemas.TypeOrderPaid:     e.Total.ByKind[schemas.KindSale],
		schemas.TypeOrderRefunded: e.Total.ByKind[schemas.KindCreditNote],
	}
	for typ, n := range byType {
		if n != want[typ] {
			errs = append(errs, fmt.Errorf("%d %s events, want %d", n, typ, want[typ]))
		}
	}
	for typ, n := range want {
		if byType[typ] == 0 && n != 0 {
			errs = append(errs, fmt.Errorf("no %s event, want %d", typ, n))
		}
	}
	if len(events) != e.Events || len(placedOf) != len(e.Docs) {
		errs = append(errs, fmt.Errorf("%d events of %d documents, want %d of %d", len(events), len(placedOf), e.Events, len(e.Docs)))
	}
	for _, c := range []struct {
		what      string
		got, want decimal.Decimal
	}{
		{"Σ order.placed totals (net)", net, e.Total.Net},
		{"Σ order.paid amounts (gross)", paid, e.Total.Gross},
		{"Σ order.refunded amounts (−returns)", refunded, e.Total.Returns.Neg()},
	} {
		if !c.got.Equal(c.want) {
			errs = append(errs, fmt.Errorf("%s = %s GBP, want %s", c.what, c.got, c.want))
		}
	}
	return errors.Join(errs...)
}
