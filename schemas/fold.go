package schemas

import (
	"fmt"

	"github.com/shopspring/decimal"
)

// Fold is the part of an order's state that decides its Status: the kind,
// the status and the money paid and refunded so far (exact, in the order's
// currency). The zero value is an order not placed yet. Every place that
// derives an order's status from its events applies this one fold: the
// write side's aggregate (producer/order), the search document
// (projections/search) and, in SQL, the analytics view order_status
// (projections/analytics; its test checks it against Fold).
//
// The rule, per event:
//   - order.placed: kind from the event, status placed, paid and refunded 0.
//   - order.paid: status paid, paid = the amount.
//   - order.shipped: status shipped.
//   - order.cancelled: status cancelled.
//   - order.refunded: refunded += the amount; the status becomes refunded
//     only for a credit note or when refunded reaches paid. A partial refund
//     of a sale leaves the status as it was (paid or shipped).
//
// Fold checks no business rule (the aggregate does, before it records an
// event): it only says what an accepted event does.
type Fold struct {
	Kind     Kind
	Status   Status
	Paid     decimal.Decimal
	Refunded decimal.Decimal
}

// Apply returns f after event p; f itself is not modified. It fails with
// ErrUnknownEvent for a payload type it does not know.
func (f Fold) Apply(p Payload) (Fold, error) {
	s, ok := StatusOf(p)
	if !ok {
		return f, fmt.Errorf("payload %T: %w", p, ErrUnknownEvent)
	}
	switch e := p.(type) {
	case *OrderPlaced:
		return Fold{Kind: e.Kind, Status: s, Paid: decimal.Zero, Refunded: decimal.Zero}, nil
	case *OrderPaid:
		f.Paid = e.Amount.Amount
	case *OrderRefunded:
		f.Refunded = f.Refunded.Add(e.Amount.Amount)
		if f.Kind != KindCreditNote && !f.Refunded.Equal(f.Paid) {
			return f, nil // a partial refund of a sale: the status stays
		}
	}
	f.Status = s
	return f, nil
}

// StatusOf returns the status event p moves an order to when it moves it:
// placed, paid, shipped, cancelled, and refunded for order.refunded, which
// moves the order there only when Fold.Apply says so (a credit note, or a
// refund that completes what was paid). ok is false for an unknown payload.
// It is the per-event status a read model that never reads before it writes
// can store (projections/analytics).
func StatusOf(p Payload) (s Status, ok bool) {
	switch p.(type) {
	case *OrderPlaced:
		return StatusPlaced, true
	case *OrderPaid:
		return StatusPaid, true
	case *OrderShipped:
		return StatusShipped, true
	case *OrderCancelled:
		return StatusCancelled, true
	case *OrderRefunded:
		return StatusRefunded, true
	}
	return "", false
}
