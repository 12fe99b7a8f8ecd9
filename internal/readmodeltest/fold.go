package readmodeltest

import (
	"fmt"
	"time"

	"github.com/orderstream/orderstream/producer/order"
	"github.com/orderstream/orderstream/schemas"
	"github.com/shopspring/decimal"
)

// Fold returns the write side's Facts after events: each order's events,
// in the given order, replayed as commands on the order aggregate
// (producer/order), which checks every rule again. It fails when an event
// does not decode, breaks a rule, or does not carry the version the
// aggregate gives it (an order's events must be 1, 2, 3 … in order).
func Fold(events []schemas.Envelope) (Facts, error) {
	orders := map[string]*order.Order{}
	for _, e := range events {
		o := orders[e.AggregateID]
		if o == nil {
			o = order.New(e.AggregateID)
			orders[e.AggregateID] = o
		}
		if err := replay(o, e); err != nil {
			return nil, fmt.Errorf("fold %s v%d of order %s: %w", e.EventType, e.AggregateVersion, e.AggregateID, err)
		}
		if o.Version() != e.AggregateVersion {
			return nil, fmt.Errorf("fold %s of order %s: event version %d, aggregate version %d", e.EventType, e.AggregateID, e.AggregateVersion, o.Version())
		}
	}
	out := make(Facts, len(orders))
	for id, o := range orders {
		s := o.State()
		out[id] = Fact{Version: s.Version, Status: s.Status, Total: s.Total.Amount.String(), Lines: len(s.Lines)}
	}
	return out, nil
}

// replay runs on o the command that records e.
func replay(o *order.Order, e schemas.Envelope) error {
	p, err := e.Decode()
	if err != nil {
		return err
	}
	at := e.OccurredAt
	switch p := p.(type) {
	case *schemas.OrderPlaced:
		return o.Place(order.PlaceInput{Number: p.OrderNumber, Kind: p.Kind, CustomerID: p.Customer.ID, Channel: p.Channel,
			Country: p.Customer.Country, Currency: p.Currency, PlacedAt: at, Lines: p.Lines})
	case *schemas.OrderPaid:
		return o.Pay(at, p.Amount, p.Reference)
	case *schemas.OrderShipped:
		return o.Ship(at, p.Carrier, p.TrackingNumber)
	case *schemas.OrderCancelled:
		return o.Cancel(at, p.Reason)
	case *schemas.OrderRefunded:
		return o.Refund(at, p.Amount, p.Reason)
	default:
		return fmt.Errorf("payload %T: %w", p, schemas.ErrUnknownEvent)
	}
}

// t0 is the business time of the stories' first events (the real file's
// first invoice).
var t0 = time.Date(2010, 12, 1, 8, 26, 0, 0, time.UTC)

func gbp(s string) schemas.Money {
	return schemas.NewMoney(decimal.RequireFromString(s), schemas.CurrencyGBP)
}

// story is the events of one order, made by commands on the aggregate.
type story struct {
	id     string
	o      *order.Order
	at     time.Time
	events []schemas.Envelope
}

// newStory places order id of kind with lines of the given quantities
// (unit prices 2.55, 3.39, 0.001, … in turn; negated quantities for a
// credit note).
func newStory(id string, kind schemas.Kind, quantities ...int64) (*story, error) {
	prices := []string{"2.55", "3.39", "0.001", "12.75"}
	s := &story{id: id, o: order.New(id), at: t0}
	in := order.PlaceInput{Number: id, Kind: kind, CustomerID: "17850", Country: "United Kingdom",
		Currency: schemas.CurrencyGBP, PlacedAt: s.at}
	for i, q := range quantities {
		if kind == schemas.KindCreditNote {
			q = -q
		}
		in.Lines = append(in.Lines, schemas.Line{StockCode: fmt.Sprintf("8512%dA", i), Description: "WHITE HANGING HEART T-LIGHT HOLDER",
			Quantity: q, UnitPrice: gbp(prices[i%len(prices)]), InvoicedAt: s.at})
	}
	return s, s.then(func(at time.Time) error { return s.o.Place(in) })
}

// then runs cmd an hour after the previous event and records its event.
func (s *story) then(cmd func(at time.Time) error) error {
	at := s.at
	if len(s.events) > 0 {
		at = s.at.Add(time.Hour)
	}
	if err := cmd(at); err != nil {
		return fmt.Errorf("order %s: %w", s.id, err)
	}
	s.at = at
	for _, c := range s.o.Changes() {
		e, err := schemas.NewEnvelope(s.id, c.Version, c.OccurredAt, c.Payload, schemas.Metadata{})
		if err != nil {
			return err
		}
		s.events = append(s.events, e)
	}
	s.o.ClearChanges()
	return nil
}

// pay, ship, cancel, refundAll and refundPart record the event of the same
// name (refundAll: the whole paid amount, or a credit note's credited
// amount; refundPart: a third of what is still refundable, rounded down to
// the thousandth).
func (s *story) pay() error {
	return s.then(func(at time.Time) error { return s.o.Pay(at, s.o.State().Total, "ref-"+s.id) })
}

func (s *story) ship() error {
	return s.then(func(at time.Time) error { return s.o.Ship(at, "DHL", "TRK-"+s.id) })
}

func (s *story) cancel() error {
	return s.then(func(at time.Time) error { return s.o.Cancel(at, "customer asked") })
}

func (s *story) refundAll() error {
	return s.then(func(at time.Time) error {
		st := s.o.State()
		amount := schemas.NewMoney(st.Paid.Sub(st.Refunded), st.Currency)
		if st.Kind == schemas.KindCreditNote {
			amount = st.Total.Neg()
		}
		return s.o.Refund(at, amount, "returned")
	})
}

func (s *story) refundPart() error {
	return s.then(func(at time.Time) error {
		st := s.o.State()
		part := st.Paid.Sub(st.Refunded).Div(decimal.NewFromInt(3)).RoundDown(3)
		return s.o.Refund(at, schemas.NewMoney(part, st.Currency), "one item returned")
	})
}
