package analytics

import (
	"errors"
	"fmt"
	"time"

	"github.com/orderstream/orderstream/schemas"
	"github.com/shopspring/decimal"
)

// Money is held to the event contract's range (schemas.AmountMilli,
// schemas/limits.go: ±99,999,999,999,999.999), which every Decimal(18,3)
// column holds; the read model keeps no range of its own.

var (
	// DateTime('UTC') holds 1970-01-01 00:00:00 .. 2105-12-31 23:59:59; an
	// event time outside (or at the epoch, a typical zero-value bug) is refused.
	minTime = time.Unix(1, 0).UTC()
	maxTime = time.Date(2105, 12, 31, 23, 59, 59, 0, time.UTC)
)

// ErrRejected wraps every reason an event cannot be projected; the Sink
// returns such events in a *consumers.RejectedError.
var ErrRejected = errors.New("event rejected by the analytics projection")

// LineRow is one row of order_lines_g<n>: one line of an order.placed event.
type LineRow struct {
	OrderID     string
	LineNo      uint32
	OrderNumber string
	Kind        schemas.Kind
	CustomerID  string // "" for a guest document
	Country     string
	Channel     schemas.Channel // "" when the order does not say
	StockCode   string
	Description string
	Quantity    int64
	UnitPrice   decimal.Decimal // GBP per unit, scale ≤ 3
	Amount      decimal.Decimal // Quantity × UnitPrice, exact, scale ≤ 3
	PlacedAt    time.Time       // occurred_at of order.placed, UTC, whole seconds
	Version     uint64          // aggregate_version of order.placed
}

// OrderRow is one row of orders_g<n>: the document of an order.placed event.
type OrderRow struct {
	OrderID     string
	OrderNumber string
	Kind        schemas.Kind
	CustomerID  string
	Country     string
	Channel     schemas.Channel // "" when the order does not say
	Currency    string
	Total       decimal.Decimal // Σ line amounts
	Lines       uint32
	PlacedAt    time.Time
	Version     uint64
}

// StatusRow is one row of order_status_g<n>: one event that changes the
// order's status, with the status it moves the order to (schemas.StatusOf:
// refunded for every order.refunded) and its amount. A refund row moves the
// order to refunded only when the contract's fold says so (a credit note, or
// the refunds reach what was paid); the view order_status applies that fold
// over all rows of the order (see Store.views).
type StatusRow struct {
	OrderID   string
	Status    schemas.Status
	EventType string
	Amount    decimal.Decimal // paid or refunded amount; 0 for other events
	UpdatedAt time.Time       // occurred_at of the event, UTC, whole seconds
	Version   uint64
}

// Rows collects the rows of a batch of events, per table.
type Rows struct {
	Lines    []LineRow
	Orders   []OrderRow
	Statuses []StatusRow
}

// Len returns the number of rows of every table together.
func (r *Rows) Len() int { return len(r.Lines) + len(r.Orders) + len(r.Statuses) }

// Add appends the rows of event e, all or nothing. currency is the only
// accepted currency (Config.Currency). It fails with an error wrapping
// ErrRejected (and naming the field) for an event that can never be
// projected: unknown type or schema version, undecodable payload, missing
// order id, a time outside DateTime's range, a kind or channel the model
// does not know, another currency, money with more than 3 decimals or
// beyond the contract's range (schemas.MaxAmount, every line amount and
// running total included), a line number repeated or < 1, or a total that
// is not the sum of its lines.
// A time or amount the columns cannot hold also wraps schemas.ErrOutOfRange.
func (r *Rows) Add(e schemas.Envelope, currency string) error {
	if err := r.add(e, currency); err != nil {
		return fmt.Errorf("%w: %s v%d of order %q (event %s): %w", ErrRejected, e.EventType, e.AggregateVersion, e.AggregateID, e.EventID, err)
	}
	return nil
}

func (r *Rows) add(e schemas.Envelope, currency string) error {
	if e.AggregateType != schemas.AggregateOrder {
		return fmt.Errorf("aggregate_type %q: want %q", e.AggregateType, schemas.AggregateOrder)
	}
	if e.AggregateID == "" {
		return errors.New("aggregate_id is empty")
	}
	if e.AggregateVersion < 1 {
		return fmt.Errorf("aggregate_version %d: want >= 1", e.AggregateVersion)
	}
	at, err := eventTime(e.OccurredAt)
	if err != nil {
		return err
	}
	p, err := e.Decode()
	if err != nil {
		return err
	}
	version := uint64(e.AggregateVersion)
	st, ok := schemas.StatusOf(p)
	if !ok {
		return fmt.Errorf("%w: payload %T", schemas.ErrUnknownEvent, p)
	}
	status := StatusRow{OrderID: e.AggregateID, Status: st, EventType: e.EventType, UpdatedAt: at, Version: version}
	switch p := p.(type) {
	case *schemas.OrderPlaced:
		return r.placed(e.AggregateID, version, at, p, currency)
	case *schemas.OrderPaid:
		if _, err = money(p.Amount, currency); err != nil {
			return fmt.Errorf("amount %w", err)
		}
		status.Amount = p.Amount.Amount
	case *schemas.OrderRefunded:
		if _, err = money(p.Amount, currency); err != nil {
			return fmt.Errorf("amount %w", err)
		}
		status.Amount = p.Amount.Amount
	}
	r.Statuses = append(r.Statuses, status)
	return nil
}

func (r *Rows) placed(id string, version uint64, at time.Time, p *schemas.OrderPlaced, currency string) error {
	if p.OrderNumber == "" {
		return errors.New("order_number is empty")
	}
	if !p.Kind.Valid() {
		return fmt.Errorf("kind %q: want sale, credit_note or adjustment", p.Kind)
	}
	if p.Currency != currency {
		return fmt.Errorf("currency %q: this read model holds %s only", p.Currency, currency)
	}
	// What every read model refuses alike (the search projection too).
	if err := schemas.CheckPlaced(p); err != nil {
		return err
	}
	if len(p.Lines) == 0 {
		return errors.New("no lines")
	}
	lines := make([]LineRow, 0, len(p.Lines))
	seen := make([]bool, len(p.Lines)+1) // line numbers 1..len(lines); others in seenMore
	var seenMore map[int]bool
	var total int64 // thousandths; in the contract's range after every line
	for i, l := range p.Lines {
		if l.LineNo < 1 {
			return fmt.Errorf("lines[%d].line_no %d: want unique numbers >= 1", i, l.LineNo)
		}
		if l.LineNo < len(seen) {
			if seen[l.LineNo] {
				return fmt.Errorf("lines[%d].line_no %d: want unique numbers >= 1", i, l.LineNo)
			}
			seen[l.LineNo] = true
		} else {
			if seenMore[l.LineNo] {
				return fmt.Errorf("lines[%d].line_no %d: want unique numbers >= 1", i, l.LineNo)
			}
			if seenMore == nil {
				seenMore = map[int]bool{}
			}
			seenMore[l.LineNo] = true
		}
		price, err := money(l.UnitPrice, currency)
		if err != nil {
			return fmt.Errorf("lines[%d].unit_price %w", i, err)
		}
		amount, err := schemas.LineAmountMilli(l.Quantity, price)
		if err != nil {
			return fmt.Errorf("lines[%d] amount: %w", i, err)
		}
		if total, err = schemas.AddMilli(total, amount); err != nil {
			return fmt.Errorf("lines[%d] running total: %w", i, err)
		}
		lines = append(lines, LineRow{
			OrderID: id, LineNo: uint32(l.LineNo), OrderNumber: p.OrderNumber, Kind: p.Kind,
			CustomerID: p.Customer.ID, Country: p.Customer.Country, Channel: p.Channel, StockCode: l.StockCode, Description: l.Description,
			Quantity: l.Quantity, UnitPrice: l.UnitPrice.Amount, Amount: decimal.New(amount, -schemas.MoneyScale), PlacedAt: at, Version: version,
		})
	}
	given, err := money(p.Total, currency)
	if err != nil {
		return fmt.Errorf("total %w", err)
	}
	if given != total {
		return fmt.Errorf("total %s is not the sum of the line amounts %s", p.Total.Amount, decimal.New(total, -schemas.MoneyScale))
	}
	r.Lines = append(r.Lines, lines...)
	r.Orders = append(r.Orders, OrderRow{
		OrderID: id, OrderNumber: p.OrderNumber, Kind: p.Kind, CustomerID: p.Customer.ID, Country: p.Customer.Country, Channel: p.Channel,
		Currency: p.Currency, Total: p.Total.Amount, Lines: uint32(len(lines)), PlacedAt: at, Version: version,
	})
	r.Statuses = append(r.Statuses, StatusRow{
		OrderID: id, Status: schemas.StatusPlaced, EventType: schemas.TypeOrderPlaced, Amount: decimal.Zero,
		UpdatedAt: at, Version: version,
	})
	return nil
}

// money checks m fits a Decimal(18,3) column in currency and returns its
// amount in thousandths. The error starts with the amount, for the caller
// to prefix with the field's name.
func money(m schemas.Money, currency string) (int64, error) {
	if m.Currency != currency {
		return 0, fmt.Errorf("currency %q: this read model holds %s only", m.Currency, currency)
	}
	return schemas.AmountMilli(m.Amount) // the error names the amount
}

// eventTime returns t in UTC truncated to whole seconds (the unit of
// DateTime), refusing what a DateTime cannot hold.
func eventTime(t time.Time) (time.Time, error) {
	if t.Before(minTime) || t.After(maxTime) {
		return time.Time{}, &schemas.RangeError{Problem: "occurred_at " + t.Format(time.RFC3339) + ": outside 1970-01-01T00:00:01Z..2105-12-31T23:59:59Z"}
	}
	return t.UTC().Truncate(time.Second), nil
}

// table is the insert of one table's rows: its column list (in the order of
// values; PrepareBatch needs the list on 18.16) and one slice per column.
type table struct {
	base    string // table name without the generation suffix
	columns string
	n       int
	values  []any // []string, []uint32, []int64, []decimal.Decimal, []time.Time, []uint64
}

// tables returns the rows as columns, one table per element: order_lines,
// orders, order_status.
func (r *Rows) tables() [3]table {
	return [3]table{lineTable(r.Lines), orderTable(r.Orders), statusTable(r.Statuses)}
}

func lineTable(rows []LineRow) table {
	n := len(rows)
	var (
		orderID, orderNumber, kind, customer, country, channel, stock, desc = make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n)
		lineNo                                                              = make([]uint32, n)
		qty                                                                 = make([]int64, n)
		price, amount                                                       = make([]decimal.Decimal, n), make([]decimal.Decimal, n)
		placed                                                              = make([]time.Time, n)
		version                                                             = make([]uint64, n)
	)
	for i := range rows {
		r := &rows[i]
		orderID[i], lineNo[i], orderNumber[i], kind[i], customer[i], country[i], channel[i] = r.OrderID, r.LineNo, r.OrderNumber, string(r.Kind), r.CustomerID, r.Country, string(r.Channel)
		stock[i], desc[i], qty[i], price[i], amount[i], placed[i], version[i] = r.StockCode, r.Description, r.Quantity, r.UnitPrice, r.Amount, r.PlacedAt, r.Version
	}
	return table{
		base:    "order_lines",
		columns: "(order_id, line_no, order_number, kind, customer_id, country, channel, stock_code, description, quantity, unit_price, amount, placed_at, version)",
		n:       n,
		values:  []any{orderID, lineNo, orderNumber, kind, customer, country, channel, stock, desc, qty, price, amount, placed, version},
	}
}

func orderTable(rows []OrderRow) table {
	n := len(rows)
	var (
		orderID, orderNumber, kind, customer, country, channel, currency = make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n)
		total                                                            = make([]decimal.Decimal, n)
		lines                                                            = make([]uint32, n)
		placed                                                           = make([]time.Time, n)
		version                                                          = make([]uint64, n)
	)
	for i := range rows {
		r := &rows[i]
		orderID[i], orderNumber[i], kind[i], customer[i], country[i], channel[i], currency[i] = r.OrderID, r.OrderNumber, string(r.Kind), r.CustomerID, r.Country, string(r.Channel), r.Currency
		total[i], lines[i], placed[i], version[i] = r.Total, r.Lines, r.PlacedAt, r.Version
	}
	return table{
		base:    "orders",
		columns: "(order_id, order_number, kind, customer_id, country, channel, currency, total, line_count, placed_at, version)",
		n:       n,
		values:  []any{orderID, orderNumber, kind, customer, country, channel, currency, total, lines, placed, version},
	}
}

func statusTable(rows []StatusRow) table {
	n := len(rows)
	var (
		orderID, status, eventType = make([]string, n), make([]string, n), make([]string, n)
		amount                     = make([]decimal.Decimal, n)
		updated                    = make([]time.Time, n)
		version                    = make([]uint64, n)
	)
	for i := range rows {
		r := &rows[i]
		orderID[i], status[i], eventType[i], amount[i], updated[i], version[i] = r.OrderID, string(r.Status), r.EventType, r.Amount, r.UpdatedAt, r.Version
	}
	return table{
		base:    "order_status",
		columns: "(order_id, status, event_type, amount, updated_at, version)",
		n:       n,
		values:  []any{orderID, status, eventType, amount, updated, version},
	}
}
