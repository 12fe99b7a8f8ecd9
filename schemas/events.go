package schemas

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/shopspring/decimal"
)

// Event types. The CloudEvents ce_type header carries the same string.
const (
	TypeOrderPlaced    = "order.placed"
	TypeOrderPaid      = "order.paid"
	TypeOrderShipped   = "order.shipped"
	TypeOrderCancelled = "order.cancelled"
	TypeOrderRefunded  = "order.refunded"
)

// Errors returned by Decode, ParseEnvelope and Validator.Validate.
var (
	ErrUnknownEvent = errors.New("unknown event type or schema version")
	ErrInvalidEvent = errors.New("invalid event")
)

// Payload is the body of an event.
type Payload interface {
	EventType() string
	SchemaVersion() int
}

// Kind is the kind of business document an order is.
type Kind string

// Document kinds of the Online Retail data set (see ARCHITECTURE.md).
const (
	KindSale       Kind = "sale"        // invoice number of 6 digits
	KindCreditNote Kind = "credit_note" // "C" prefix: cancellation or return, negative quantities
	KindAdjustment Kind = "adjustment"  // "A" prefix: bad-debt adjustment
)

// Valid reports whether k is one of the known kinds.
func (k Kind) Valid() bool {
	return k == KindSale || k == KindCreditNote || k == KindAdjustment
}

// Status is the lifecycle state of an order after an event.
type Status string

// Order statuses.
const (
	StatusPlaced    Status = "placed"
	StatusPaid      Status = "paid"
	StatusShipped   Status = "shipped"
	StatusCancelled Status = "cancelled"
	StatusRefunded  Status = "refunded"
)

// Line is one line of a document, kept exactly as the source had it (repeated
// lines included).
//
// LineNo numbers the lines of one order 1..n in source order; SourceLine is
// the line number in the imported file (1 = header), 0 when not imported.
// Quantity is in units (negative on credit notes and stock corrections).
// UnitPrice is per unit, exact (the data set has 3 decimals at most).
type Line struct {
	LineNo      int       `json:"line_no"`
	SourceLine  int       `json:"source_line,omitempty"`
	StockCode   string    `json:"stock_code"`
	Description string    `json:"description"`
	Quantity    int64     `json:"quantity"`
	UnitPrice   Money     `json:"unit_price"`
	InvoicedAt  time.Time `json:"invoiced_at"`
}

// Amount returns Quantity × UnitPrice, exact.
func (l Line) Amount() Money {
	return Money{Amount: l.UnitPrice.Amount.Mul(decimal.NewFromInt(l.Quantity)), Currency: l.UnitPrice.Currency}
}

// OrderPlaced (order.placed v2, schemas/v2/order.placed.json) records a new
// document with all its lines. Total is Σ line amounts. Channel is empty when
// the source does not say (the Online Retail file never does).
//
// Since v1: the buyer is one value, Customer {ID, Country} (v1 had top-level
// customer_id and country), and Channel is new and optional. An order.placed
// v1 reaches a reader in this shape through its upcaster (Upcasters).
type OrderPlaced struct {
	OrderNumber string   `json:"order_number"`
	Kind        Kind     `json:"kind"`
	Customer    Customer `json:"customer"`
	Channel     Channel  `json:"channel,omitempty"`
	Currency    string   `json:"currency"`
	Lines       []Line   `json:"lines"`
	Total       Money    `json:"total"`
}

// Customer is the buyer of an order. ID is empty for a guest document;
// Country is the buyer's country as the source names it ("United Kingdom",
// "EIRE"), never empty.
type Customer struct {
	ID      string `json:"id,omitempty"`
	Country string `json:"country"`
}

// Channel is where an order was taken. The empty Channel means "not known".
type Channel string

// Sales channels (order.placed v2).
const (
	ChannelWeb         Channel = "web"
	ChannelPhone       Channel = "phone"
	ChannelMarketplace Channel = "marketplace"
	ChannelStore       Channel = "store"
)

// Valid reports whether c is empty (not known) or one of the channels above.
func (c Channel) Valid() bool {
	return c == "" || c == ChannelWeb || c == ChannelPhone || c == ChannelMarketplace || c == ChannelStore
}

// ChannelUnknown is how the read models' filters, breakdowns and facets name
// the empty Channel (not known). It is never an event's value.
const ChannelUnknown = "unknown"

// ChannelFilters are the values ParseChannelFilter accepts.
var ChannelFilters = []string{string(ChannelWeb), string(ChannelPhone), string(ChannelMarketplace), string(ChannelStore), ChannelUnknown}

// ParseChannelFilter returns the Channel a read-model filter value names:
// web, phone, marketplace, store, or ChannelUnknown for the empty Channel.
// Any other value (case-sensitive; "" included) is an error naming it.
func ParseChannelFilter(s string) (Channel, error) {
	if s == ChannelUnknown {
		return "", nil
	}
	if c := Channel(s); c != "" && c.Valid() {
		return c, nil
	}
	return "", fmt.Errorf("channel %q: want one of %s", s, strings.Join(ChannelFilters, ", "))
}

// OrderPaid (order.paid v2, the shape of v1) records payment of a sale in full.
type OrderPaid struct {
	Amount    Money  `json:"amount"`
	Reference string `json:"reference,omitempty"`
}

// OrderShipped (order.shipped v2, the shape of v1) records dispatch of a paid sale.
type OrderShipped struct {
	Carrier        string `json:"carrier,omitempty"`
	TrackingNumber string `json:"tracking_number,omitempty"`
}

// OrderCancelled (order.cancelled v2, the shape of v1) records cancellation before shipping.
type OrderCancelled struct {
	Reason string `json:"reason"`
}

// OrderRefunded (order.refunded v2, the shape of v1) records money returned to the customer:
// for a credit note, the amount it credits (−total, so positive); for a paid
// sale, a refund of at most what was paid (> 0). Amount is never negative.
type OrderRefunded struct {
	Amount Money  `json:"amount"`
	Reason string `json:"reason,omitempty"`
}

func (OrderPlaced) EventType() string    { return TypeOrderPlaced }
func (OrderPaid) EventType() string      { return TypeOrderPaid }
func (OrderShipped) EventType() string   { return TypeOrderShipped }
func (OrderCancelled) EventType() string { return TypeOrderCancelled }
func (OrderRefunded) EventType() string  { return TypeOrderRefunded }

// SchemaVersion of every payload type is CurrentVersion: the Go types are
// the newest shape; older versions exist as JSON only (v1/*.json) and are
// read through Upcasters.
func (OrderPlaced) SchemaVersion() int    { return CurrentVersion }
func (OrderPaid) SchemaVersion() int      { return CurrentVersion }
func (OrderShipped) SchemaVersion() int   { return CurrentVersion }
func (OrderCancelled) SchemaVersion() int { return CurrentVersion }
func (OrderRefunded) SchemaVersion() int  { return CurrentVersion }
