package order

import (
	"errors"
	"fmt"
	"time"

	"github.com/orderstream/orderstream/schemas"
	"github.com/shopspring/decimal"
)

// Rule errors. A *RuleError wraps exactly one of them; test with errors.Is.
var (
	ErrAlreadyPlaced   = errors.New("order already placed")
	ErrNotPlaced       = errors.New("order not placed")
	ErrCancelled       = errors.New("order is cancelled")
	ErrNotPaid         = errors.New("order is not paid")
	ErrAlreadyPaid     = errors.New("order already paid")
	ErrAlreadyShipped  = errors.New("order already shipped")
	ErrRefunded        = errors.New("order is refunded")
	ErrWrongKind       = errors.New("command not allowed for this kind of order")
	ErrAmountMismatch  = errors.New("amount does not match")
	ErrInvalidArgument = errors.New("invalid argument")
)

// RuleError reports a command the aggregate refused. Rule is one of the Err…
// sentinels above; Unwrap returns it.
type RuleError struct {
	Command string
	OrderID string
	Status  schemas.Status
	Rule    error
	Detail  string
}

func (e *RuleError) Error() string {
	status := string(e.Status)
	if status == "" {
		status = "not placed yet"
	}
	msg := fmt.Sprintf("%s order %s (status %s): %v", e.Command, e.OrderID, status, e.Rule)
	if e.Detail != "" {
		msg += ": " + e.Detail
	}
	return msg
}

func (e *RuleError) Unwrap() error { return e.Rule }

// Change is one event recorded by the aggregate and not yet persisted.
type Change struct {
	Version    int64
	OccurredAt time.Time
	Payload    schemas.Payload
}

// Order is the aggregate. The zero value is an order not yet placed; use
// New for a fresh one and Rehydrate to load one from stored state.
// An Order is not safe for concurrent use.
type Order struct {
	id       string
	number   string
	kind     schemas.Kind
	status   schemas.Status
	customer string
	country  string
	currency string
	lines    []schemas.Line
	total    schemas.Money
	paid     decimal.Decimal
	refunded decimal.Decimal
	placedAt time.Time
	version  int64
	pending  []Change
}

// New returns an order with id that is not placed yet (version 0).
func New(id string) *Order { return &Order{id: id} }

// State is the persisted snapshot of an order (what the repository stores).
type State struct {
	ID         string
	Number     string
	Kind       schemas.Kind
	Status     schemas.Status
	CustomerID string
	Country    string
	Currency   string
	Lines      []schemas.Line
	Total      schemas.Money
	Paid       decimal.Decimal
	Refunded   decimal.Decimal
	PlacedAt   time.Time
	Version    int64
}

// Rehydrate returns the order a stored State describes.
func Rehydrate(s State) *Order {
	return &Order{
		id: s.ID, number: s.Number, kind: s.Kind, status: s.Status, customer: s.CustomerID,
		country: s.Country, currency: s.Currency, lines: s.Lines, total: s.Total,
		paid: s.Paid, refunded: s.Refunded, placedAt: s.PlacedAt, version: s.Version,
	}
}

// State returns the current snapshot, pending changes applied.
func (o *Order) State() State {
	return State{
		ID: o.id, Number: o.number, Kind: o.kind, Status: o.status, CustomerID: o.customer,
		Country: o.country, Currency: o.currency, Lines: o.lines, Total: o.total,
		Paid: o.paid, Refunded: o.refunded, PlacedAt: o.placedAt, Version: o.version,
	}
}

// ID returns the aggregate id.
func (o *Order) ID() string { return o.id }

// Version returns the version after pending changes (0 = not placed).
func (o *Order) Version() int64 { return o.version }

// PersistedVersion returns the version the store holds: Version minus the
// pending changes. The repository writes only if the stored version still
// equals it (optimistic concurrency).
func (o *Order) PersistedVersion() int64 { return o.version - int64(len(o.pending)) }

// Changes returns the events recorded since the order was loaded, in order.
func (o *Order) Changes() []Change { return o.pending }

// ClearChanges forgets pending changes once the repository stored them.
func (o *Order) ClearChanges() { o.pending = nil }

// PlaceInput is what Place needs. Lines keep their given order; LineNo is
// assigned 1..n by Place. Channel is optional ("" = not known).
type PlaceInput struct {
	Number     string
	Kind       schemas.Kind
	CustomerID string
	Country    string
	Channel    schemas.Channel
	Currency   string
	PlacedAt   time.Time
	Lines      []schemas.Line
}

// Place records order.placed. Rules: not placed before; a known kind; 1 to
// schemas.MaxLines lines; every line in the order's currency; credit notes
// have no positive quantity; every value within the range of the event
// contract (schemas/limits.go): texts valid UTF-8 without NUL and within
// their lengths, quantities, unit prices, line amounts, every running total
// in line order and times. A value out of range is refused with
// ErrInvalidArgument and a detail naming the line (its file line when it has
// one) and the field.
func (o *Order) Place(in PlaceInput) error {
	const cmd = "place"
	if o.version > 0 {
		return o.refuse(cmd, ErrAlreadyPlaced, "")
	}
	switch {
	case in.Number == "":
		return o.refuse(cmd, ErrInvalidArgument, "order number is empty")
	case !in.Kind.Valid():
		return o.refuse(cmd, ErrInvalidArgument, fmt.Sprintf("unknown kind %q", in.Kind))
	case len(in.Lines) == 0:
		return o.refuse(cmd, ErrInvalidArgument, "no lines")
	case in.Country == "":
		return o.refuse(cmd, ErrInvalidArgument, "country is empty")
	case !in.Channel.Valid():
		return o.refuse(cmd, ErrInvalidArgument, fmt.Sprintf("unknown channel %q (want web, phone, marketplace, store or none)", in.Channel))
	case len(in.Currency) != 3:
		return o.refuse(cmd, ErrInvalidArgument, fmt.Sprintf("currency %q is not ISO 4217", in.Currency))
	case in.PlacedAt.IsZero():
		return o.refuse(cmd, ErrInvalidArgument, "placed_at is zero")
	case len(in.Lines) > schemas.MaxLines:
		return o.refuse(cmd, ErrInvalidArgument, fmt.Sprintf("%d lines, more than %d (schemas.MaxLines)", len(in.Lines), schemas.MaxLines))
	}
	if err := firstErr(
		inRange("order number", schemas.CheckKey(in.Number, schemas.MaxOrderNumber)),
		inRange("customer id", schemas.CheckKey(in.CustomerID, schemas.MaxCustomerID)),
		inRange("country", schemas.CheckKey(in.Country, schemas.MaxCountry)),
		inRange("placed_at", schemas.CheckTime(in.PlacedAt)),
	); err != nil {
		return o.refuse(cmd, ErrInvalidArgument, err.Error())
	}
	lines := make([]schemas.Line, len(in.Lines))
	var total int64 // running total in thousandths
	for i, l := range in.Lines {
		if l.UnitPrice.Currency != in.Currency {
			return o.refuse(cmd, ErrInvalidArgument, fmt.Sprintf("%s: currency %s differs from order currency %s", lineName(i, l), l.UnitPrice.Currency, in.Currency))
		}
		if in.Kind == schemas.KindCreditNote && l.Quantity > 0 {
			return o.refuse(cmd, ErrInvalidArgument, fmt.Sprintf("%s: credit note with positive quantity %d", lineName(i, l), l.Quantity))
		}
		if l.StockCode == "" {
			return o.refuse(cmd, ErrInvalidArgument, fmt.Sprintf("%s: stock code is empty", lineName(i, l)))
		}
		l.LineNo = i + 1
		if l.InvoicedAt.IsZero() {
			l.InvoicedAt = in.PlacedAt
		}
		l.InvoicedAt = l.InvoicedAt.UTC()
		price, perr := schemas.AmountMilli(l.UnitPrice.Amount)
		amount, aerr := schemas.LineAmountMilli(l.Quantity, price)
		if perr == nil && aerr == nil {
			total, aerr = schemas.AddMilli(total, amount)
		}
		if err := firstErr(
			inRange("stock code", schemas.CheckKey(l.StockCode, schemas.MaxStockCode)),
			inRange("description", schemas.CheckText(l.Description, schemas.MaxDescription)),
			inRange("quantity", schemas.CheckQuantity(l.Quantity)),
			inRange("unit_price", perr),
			inRange("invoiced_at", schemas.CheckTime(l.InvoicedAt)),
			inRange("amount (running total of the lines)", aerr),
		); err != nil {
			return o.refuse(cmd, ErrInvalidArgument, fmt.Sprintf("%s: %v", lineName(i, l), err))
		}
		lines[i] = l
	}
	o.record(in.PlacedAt, &schemas.OrderPlaced{
		OrderNumber: in.Number, Kind: in.Kind, Customer: schemas.Customer{ID: in.CustomerID, Country: in.Country}, Channel: in.Channel,
		Currency: in.Currency, Lines: lines, Total: schemas.NewMoney(decimal.New(total, -schemas.MoneyScale), in.Currency),
	})
	return nil
}

// Pay records order.paid. Rules: a placed sale, not cancelled, not paid
// before; the amount equals the total (which is never negative for a sale
// that is paid).
func (o *Order) Pay(at time.Time, amount schemas.Money, reference string) error {
	const cmd = "pay"
	if err := o.mustBePlaced(cmd); err != nil {
		return err
	}
	switch {
	case o.kind != schemas.KindSale:
		return o.refuse(cmd, ErrWrongKind, string(o.kind))
	case o.status == schemas.StatusCancelled:
		return o.refuse(cmd, ErrCancelled, "")
	case o.status != schemas.StatusPlaced:
		return o.refuse(cmd, ErrAlreadyPaid, "")
	case o.total.Amount.IsNegative():
		return o.refuse(cmd, ErrInvalidArgument, fmt.Sprintf("the sale's total %s is negative and cannot be paid (money going back to a customer is a credit note)", o.total))
	case !amount.Equal(o.total):
		return o.refuse(cmd, ErrAmountMismatch, fmt.Sprintf("paid %s, total %s", amount, o.total))
	}
	if err := firstErr(inRange("paid at", schemas.CheckTime(at)), o.notBeforePlaced("paid at", at), inRange("reference", schemas.CheckText(reference, schemas.MaxReference))); err != nil {
		return o.refuse(cmd, ErrInvalidArgument, err.Error())
	}
	o.record(at, &schemas.OrderPaid{Amount: amount, Reference: reference})
	return nil
}

// Ship records order.shipped. Rules: a paid sale, not cancelled, not shipped,
// not refunded.
func (o *Order) Ship(at time.Time, carrier, tracking string) error {
	const cmd = "ship"
	if err := o.mustBePlaced(cmd); err != nil {
		return err
	}
	switch {
	case o.kind != schemas.KindSale:
		return o.refuse(cmd, ErrWrongKind, string(o.kind))
	case o.status == schemas.StatusCancelled:
		return o.refuse(cmd, ErrCancelled, "")
	case o.status == schemas.StatusShipped:
		return o.refuse(cmd, ErrAlreadyShipped, "")
	case o.status == schemas.StatusRefunded:
		return o.refuse(cmd, ErrRefunded, "")
	case o.status != schemas.StatusPaid:
		return o.refuse(cmd, ErrNotPaid, "")
	}
	if err := firstErr(inRange("shipped at", schemas.CheckTime(at)), o.notBeforePlaced("shipped at", at), inRange("carrier", schemas.CheckText(carrier, schemas.MaxCarrier)),
		inRange("tracking number", schemas.CheckText(tracking, schemas.MaxTrackingNumber))); err != nil {
		return o.refuse(cmd, ErrInvalidArgument, err.Error())
	}
	o.record(at, &schemas.OrderShipped{Carrier: carrier, TrackingNumber: tracking})
	return nil
}

// Cancel records order.cancelled. Rules: a sale, placed or paid (not
// shipped, not refunded), not cancelled before; a reason is required.
func (o *Order) Cancel(at time.Time, reason string) error {
	const cmd = "cancel"
	if err := o.mustBePlaced(cmd); err != nil {
		return err
	}
	switch {
	case o.kind != schemas.KindSale:
		return o.refuse(cmd, ErrWrongKind, string(o.kind))
	case o.status == schemas.StatusCancelled:
		return o.refuse(cmd, ErrCancelled, "")
	case o.status == schemas.StatusShipped:
		return o.refuse(cmd, ErrAlreadyShipped, "")
	case o.status == schemas.StatusRefunded:
		return o.refuse(cmd, ErrRefunded, "")
	case reason == "":
		return o.refuse(cmd, ErrInvalidArgument, "reason is empty")
	}
	if err := firstErr(inRange("cancelled at", schemas.CheckTime(at)), o.notBeforePlaced("cancelled at", at), inRange("reason", schemas.CheckText(reason, schemas.MaxReason))); err != nil {
		return o.refuse(cmd, ErrInvalidArgument, err.Error())
	}
	o.record(at, &schemas.OrderCancelled{Reason: reason})
	return nil
}

// Refund records order.refunded.
//   - credit_note: once, for exactly −total (the credited amount, ≥ 0).
//   - sale: paid, shipped, or cancelled after it was paid (the money paid
//     for a cancelled order goes back by refunds); 0 < amount ≤ paid −
//     refunded. A cancelled sale with nothing left to refund is refused
//     with ErrCancelled.
func (o *Order) Refund(at time.Time, amount schemas.Money, reason string) error {
	const cmd = "refund"
	if err := o.mustBePlaced(cmd); err != nil {
		return err
	}
	if amount.Currency != o.currency {
		return o.refuse(cmd, ErrAmountMismatch, fmt.Sprintf("currency %s, order currency %s", amount.Currency, o.currency))
	}
	switch o.kind {
	case schemas.KindCreditNote:
		if o.status != schemas.StatusPlaced {
			return o.refuse(cmd, ErrAmountMismatch, "credit note already refunded")
		}
		if !amount.Equal(o.total.Neg()) {
			return o.refuse(cmd, ErrAmountMismatch, fmt.Sprintf("refund %s, credit note credits %s", amount, o.total.Neg()))
		}
	case schemas.KindSale:
		switch {
		case o.status == schemas.StatusCancelled && !o.paid.Sub(o.refunded).IsPositive():
			return o.refuse(cmd, ErrCancelled, "nothing paid is left to refund")
		case o.status == schemas.StatusPlaced:
			return o.refuse(cmd, ErrNotPaid, "")
		case !amount.Amount.IsPositive() || amount.Amount.GreaterThan(o.paid.Sub(o.refunded)):
			return o.refuse(cmd, ErrAmountMismatch, fmt.Sprintf("refund %s, refundable %s %s", amount, o.paid.Sub(o.refunded), o.currency))
		}
	default:
		return o.refuse(cmd, ErrWrongKind, string(o.kind))
	}
	if err := firstErr(inRange("amount", schemas.CheckAmount(amount.Amount)), inRange("refunded at", schemas.CheckTime(at)), o.notBeforePlaced("refunded at", at),
		inRange("reason", schemas.CheckText(reason, schemas.MaxReason))); err != nil {
		return o.refuse(cmd, ErrInvalidArgument, err.Error())
	}
	o.record(at, &schemas.OrderRefunded{Amount: amount, Reason: reason})
	return nil
}

// lineName names line i of a PlaceInput: by its line in the imported file
// when it has one, else by its position in the order.
func lineName(i int, l schemas.Line) string {
	if l.SourceLine > 0 {
		return fmt.Sprintf("file line %d", l.SourceLine)
	}
	return fmt.Sprintf("line %d of the order", i+1)
}

// inRange names the field of a schemas.Check… error, or returns nil.
func inRange(field string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("%s %w", field, err)
}

// notBeforePlaced refuses a command time before the order was placed: a
// payment, shipment, cancellation or refund cannot precede the order it
// changes (the import's events share the document's time).
func (o *Order) notBeforePlaced(field string, at time.Time) error {
	if at.Before(o.placedAt) {
		return fmt.Errorf("%s %s is before the order was placed (%s)", field, at.UTC().Format(time.RFC3339Nano), o.placedAt.UTC().Format(time.RFC3339Nano))
	}
	return nil
}

// firstErr returns the first non-nil error.
func firstErr(errs ...error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

func (o *Order) mustBePlaced(cmd string) error {
	if o.version == 0 {
		return o.refuse(cmd, ErrNotPlaced, "")
	}
	return nil
}

func (o *Order) refuse(cmd string, rule error, detail string) error {
	return &RuleError{Command: cmd, OrderID: o.id, Status: o.status, Rule: rule, Detail: detail}
}

func (o *Order) record(at time.Time, p schemas.Payload) {
	o.version++
	o.pending = append(o.pending, Change{Version: o.version, OccurredAt: at.UTC(), Payload: p})
	o.apply(p)
}

// apply mutates state for one event; it never fails (rules were checked).
// The status, paid and refunded follow the contract's fold (schemas.Fold).
func (o *Order) apply(p schemas.Payload) {
	f, err := schemas.Fold{Kind: o.kind, Status: o.status, Paid: o.paid, Refunded: o.refunded}.Apply(p)
	if err != nil {
		return // record is only called with the payloads of this package's commands
	}
	o.status, o.paid, o.refunded = f.Status, f.Paid, f.Refunded
	if e, ok := p.(*schemas.OrderPlaced); ok {
		o.number, o.kind, o.customer, o.country = e.OrderNumber, e.Kind, e.Customer.ID, e.Customer.Country
		o.currency, o.lines, o.total = e.Currency, e.Lines, e.Total
		o.placedAt = o.pending[len(o.pending)-1].OccurredAt
	}
}
