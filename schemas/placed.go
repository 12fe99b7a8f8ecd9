package schemas

import (
	"fmt"

	"github.com/shopspring/decimal"
)

// CheckPlaced reports what makes p an order.placed that the aggregate never
// emits and a read model must not store: an empty order number, an unknown
// kind or channel, no lines, a line number below 1 or repeated, a price or
// total in another currency than the order's, a quantity, unit price, line
// amount or running total outside the contract's range, or a total that is
// not the sum of the line amounts. Every read model applies it, so an event
// written to the topic by another writer is refused by all of them or by
// none.
// Errors wrap ErrInvalidEvent, or ErrOutOfRange (a *RangeError) for a value
// outside the range; one error names the first problem found, by field.
func CheckPlaced(p *OrderPlaced) error {
	invalid := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrInvalidEvent, fmt.Sprintf(format, args...))
	}
	switch {
	case p.OrderNumber == "":
		return invalid("order_number is empty")
	case !p.Kind.Valid():
		return invalid("kind %q: want sale, credit_note or adjustment", p.Kind)
	case !p.Channel.Valid():
		return invalid("channel %q: want web, phone, marketplace, store or none", p.Channel)
	case len(p.Lines) == 0:
		return invalid("no lines")
	case p.Total.Currency != p.Currency:
		return invalid("total currency %q: the order's is %q", p.Total.Currency, p.Currency)
	}
	seen := make(map[int]bool, len(p.Lines))
	var total int64
	for i, l := range p.Lines {
		if l.LineNo < 1 || seen[l.LineNo] {
			return invalid("lines[%d].line_no %d: want unique numbers >= 1", i, l.LineNo)
		}
		seen[l.LineNo] = true
		if l.UnitPrice.Currency != p.Currency {
			return invalid("lines[%d].unit_price currency %q: the order's is %q", i, l.UnitPrice.Currency, p.Currency)
		}
		if err := CheckQuantity(l.Quantity); err != nil {
			return fmt.Errorf("lines[%d].quantity %w", i, err)
		}
		price, err := AmountMilli(l.UnitPrice.Amount)
		if err != nil {
			return fmt.Errorf("lines[%d].unit_price %w", i, err)
		}
		amount, err := LineAmountMilli(l.Quantity, price)
		if err != nil {
			return fmt.Errorf("lines[%d] amount %w", i, err)
		}
		if total, err = AddMilli(total, amount); err != nil {
			return fmt.Errorf("lines[%d] running total %w", i, err)
		}
	}
	given, err := AmountMilli(p.Total.Amount)
	if err != nil {
		return fmt.Errorf("total %w", err)
	}
	if given != total {
		return invalid("total %s is not the sum of the line amounts %s", p.Total.Amount, decimal.New(total, -MoneyScale))
	}
	return nil
}
