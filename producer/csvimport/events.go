package csvimport

import (
	"fmt"

	"github.com/google/uuid"
	"github.com/orderstream/orderstream/producer/order"
	"github.com/orderstream/orderstream/schemas"
)

// Namespace is the UUID namespace of imported order ids (fixed for the
// project; changing it would give every imported document a new id).
var Namespace = uuid.MustParse("8fbcb099-d50e-4b4c-8f58-809c190e5c96")

// OrderID returns the order id of the document with number: the UUIDv5
// (SHA-1, RFC 9562) of "invoice:"+number in Namespace, as a lower-case
// hyphenated string. The same number always gives the same id.
func OrderID(number string) string {
	return uuid.NewSHA1(Namespace, []byte("invoice:"+number)).String()
}

// Build returns a new order for doc with its changes pending, decided by the
// aggregate: placed (at doc.PlacedAt, every line, GBP), then paid in full
// (sale) or refunded by −total (credit note); an adjustment is placed only.
// Both events occur at doc.PlacedAt. It fails for a document with row errors
// (doc.Err()) and with the aggregate's *order.RuleError for one it refuses.
// The importer makes the same decisions through command.Handler.Place
// (placeInput, settle).
func Build(doc Document) (*order.Order, error) {
	if err := doc.Err(); err != nil {
		return nil, fmt.Errorf("document %s: %w", doc.Number, err)
	}
	o := order.New(OrderID(doc.Number))
	err := o.Place(placeInput(doc))
	if err == nil {
		err = settle(doc, o)
	}
	if err != nil {
		return nil, fmt.Errorf("document %s (line %d): %w", doc.Number, doc.FirstLine, err)
	}
	return o, nil
}

// placeInput is the place command of doc: every line, GBP, at doc.PlacedAt.
func placeInput(doc Document) order.PlaceInput {
	return order.PlaceInput{
		Number:     doc.Number,
		Kind:       doc.Kind,
		CustomerID: doc.CustomerID,
		Country:    doc.Country,
		Currency:   schemas.CurrencyGBP,
		PlacedAt:   doc.PlacedAt,
		Lines:      doc.Lines,
	}
}

// settle decides what follows the placing of doc's order o: a sale is paid
// in full, a credit note refunded by −total, at doc.PlacedAt; an adjustment
// stays placed.
func settle(doc Document, o *order.Order) error {
	total := o.State().Total
	switch doc.Kind {
	case schemas.KindSale:
		return o.Pay(doc.PlacedAt, total, "")
	case schemas.KindCreditNote:
		return o.Refund(doc.PlacedAt, total.Neg(), "")
	}
	return nil
}

// Events returns the envelopes the write side emits for doc, in version
// order (order.placed v1, then order.paid or order.refunded v2): what Build
// decides, each change wrapped by schemas.NewEnvelope with a fresh event id
// and no metadata. It fails as Build does.
func Events(doc Document) ([]schemas.Envelope, error) {
	o, err := Build(doc)
	if err != nil {
		return nil, err
	}
	changes := o.Changes()
	out := make([]schemas.Envelope, len(changes))
	for i, c := range changes {
		if out[i], err = schemas.NewEnvelope(o.ID(), c.Version, c.OccurredAt, c.Payload, schemas.Metadata{}); err != nil {
			return nil, fmt.Errorf("document %s: %w", doc.Number, err)
		}
	}
	return out, nil
}
