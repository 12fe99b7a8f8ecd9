package search

import (
	"errors"
	"fmt"
	"time"

	"github.com/orderstream/orderstream/schemas"
	"github.com/shopspring/decimal"
)

// Order is the search document of one order (document id = order id), as
// stored in the index and returned by Query.
//
// Money is exact: Total, Paid, Refunded and Line.UnitPrice are decimal
// strings in JSON ("139.12"), never JSON numbers. TotalMilli is a numeric
// copy of Total for sorting and range filters only: Total × 1000 as a long
// (thousandths of the currency unit; exact for every amount with at most
// three decimals, which covers the whole data set; an amount with more
// decimals is rounded half away from zero in this copy only).
//
// Times are UTC. PlacedAt is the occurred_at of order.placed; UpdatedAt the
// occurred_at of the last applied event. Version is the order's
// aggregate_version after the last applied event; it is also the document's
// external version in the index. Deleted marks a soft-deleted order: no event
// of schema v1 deletes an order, but a deleting event must set it (at its
// version) instead of deleting the document, so that an older replayed event
// can never bring the order back; Query never returns such documents.
type Order struct {
	OrderID      string          `json:"order_id"`
	OrderNumber  string          `json:"order_number"`
	Kind         schemas.Kind    `json:"kind"`
	Status       schemas.Status  `json:"status"`
	CustomerID   string          `json:"customer_id,omitempty"`
	Country      string          `json:"country"`
	Channel      schemas.Channel `json:"channel,omitempty"` // absent when the order does not say
	Currency     string          `json:"currency"`
	PlacedAt     time.Time       `json:"placed_at"`
	UpdatedAt    time.Time       `json:"updated_at"`
	Total        decimal.Decimal `json:"total"`
	TotalMilli   int64           `json:"total_milli"`
	Paid         decimal.Decimal `json:"paid"`
	Refunded     decimal.Decimal `json:"refunded"`
	LineCount    int             `json:"line_count"`
	Lines        []Line          `json:"lines"`
	StockCodes   []string        `json:"stock_codes"`
	Descriptions []string        `json:"descriptions"`
	Version      int64           `json:"version"`
	Deleted      bool            `json:"deleted"`

	// MatchedLines is filled by Query.Search only (never stored): how many
	// lines match the request's text or product; 0 when neither was given.
	MatchedLines int `json:"-"`
}

// Line is one order line in a search document. Quantity is in units;
// UnitPrice is exact (decimal string in JSON), in the order's currency.
type Line struct {
	LineNo      int             `json:"line_no"`
	StockCode   string          `json:"stock_code"`
	Description string          `json:"description"`
	Quantity    int64           `json:"quantity"`
	UnitPrice   decimal.Decimal `json:"unit_price"`
}

var thousand = decimal.NewFromInt(1000)

// milli returns d × 1000 rounded half away from zero, as a long.
func milli(d decimal.Decimal) int64 { return d.Mul(thousand).Round(0).IntPart() }

// errNoBase means an event other than order.placed arrived for an order with
// no document: the order's order.placed was never applied.
var errNoBase = fmt.Errorf("no document for the order: its order.placed was never applied")

// apply folds one event into o (nil before order.placed) and returns the new
// document. placed sets everything; every other event changes Status, Paid
// and Refunded as the contract's fold says (schemas.Fold: a partial refund
// of a sale leaves the status as it was). The caller guarantees
// e.AggregateVersion > o.Version. apply never modifies o.
func apply(o *Order, e schemas.Envelope, p schemas.Payload) (*Order, error) {
	if placed, ok := p.(*schemas.OrderPlaced); ok {
		return fromPlaced(e, placed), nil
	}
	if o == nil {
		return nil, errNoBase
	}
	f, err := schemas.Fold{Kind: o.Kind, Status: o.Status, Paid: o.Paid, Refunded: o.Refunded}.Apply(p)
	if err != nil {
		return nil, fmt.Errorf("event type %s: %w", e.EventType, err)
	}
	n := *o
	n.Status, n.Paid, n.Refunded = f.Status, f.Paid, f.Refunded
	n.UpdatedAt = e.OccurredAt.UTC()
	n.Version = e.AggregateVersion
	return &n, nil
}

// checkRange refuses an event holding a value outside the event contract's
// range (schemas/limits.go: occurred_at, every amount and quantity), with
// an error wrapping schemas.ErrOutOfRange, and an order.placed that
// schemas.CheckPlaced refuses (a total that is not the sum of its lines, a
// line number repeated …), as the analytics projection does: the write side never emits one, and applying it here while
// analytics rejects it would split the read models.
func checkRange(e schemas.Envelope, p schemas.Payload) error {
	if err := schemas.CheckTime(e.OccurredAt); err != nil {
		return fmt.Errorf("%s v%d of order %s: occurred_at %w", e.EventType, e.AggregateVersion, e.AggregateID, err)
	}
	var errs []error
	amount := func(field string, m schemas.Money) {
		if err := schemas.CheckAmount(m.Amount); err != nil {
			errs = append(errs, fmt.Errorf("%s %w", field, err))
		}
	}
	switch x := p.(type) {
	case *schemas.OrderPlaced:
		if err := schemas.CheckPlaced(x); err != nil {
			errs = append(errs, err)
		}
		amount("total", x.Total)
		for i, l := range x.Lines {
			amount(fmt.Sprintf("lines[%d].unit_price", i), l.UnitPrice)
			if err := schemas.CheckQuantity(l.Quantity); err != nil {
				errs = append(errs, fmt.Errorf("lines[%d].quantity %w", i, err))
			}
		}
	case *schemas.OrderPaid:
		amount("amount", x.Amount)
	case *schemas.OrderRefunded:
		amount("amount", x.Amount)
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("%s v%d of order %s: %w", e.EventType, e.AggregateVersion, e.AggregateID, err)
	}
	return nil
}

func fromPlaced(e schemas.Envelope, p *schemas.OrderPlaced) *Order {
	o := &Order{
		OrderID:     e.AggregateID,
		OrderNumber: p.OrderNumber,
		Kind:        p.Kind,
		Status:      schemas.StatusPlaced,
		CustomerID:  p.Customer.ID,
		Country:     p.Customer.Country,
		Channel:     p.Channel,
		Currency:    p.Currency,
		PlacedAt:    e.OccurredAt.UTC(),
		UpdatedAt:   e.OccurredAt.UTC(),
		Total:       p.Total.Amount,
		TotalMilli:  milli(p.Total.Amount),
		Paid:        decimal.Zero,
		Refunded:    decimal.Zero,
		LineCount:   len(p.Lines),
		Lines:       make([]Line, len(p.Lines)),
		Version:     e.AggregateVersion,
	}
	codes := make(map[string]bool, len(p.Lines))
	descs := make(map[string]bool, len(p.Lines))
	for i, l := range p.Lines {
		o.Lines[i] = Line{LineNo: l.LineNo, StockCode: l.StockCode, Description: l.Description, Quantity: l.Quantity, UnitPrice: l.UnitPrice.Amount}
		if !codes[l.StockCode] {
			codes[l.StockCode] = true
			o.StockCodes = append(o.StockCodes, l.StockCode)
		}
		if d := l.Description; d != "" && !descs[d] {
			descs[d] = true
			o.Descriptions = append(o.Descriptions, d)
		}
	}
	if o.StockCodes == nil {
		o.StockCodes = []string{}
	}
	if o.Descriptions == nil {
		o.Descriptions = []string{}
	}
	return o
}
