// Package command holds the write side's command handlers: each loads the
// order, asks the aggregate to decide, and saves the result. Handlers retry
// a command a few times on ErrConflict (another writer moved the version),
// re-running the decision on fresh state, so no update is ever lost.
package command

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/orderstream/orderstream/internal/tracing"
	"github.com/orderstream/orderstream/producer/order"
	"github.com/orderstream/orderstream/schemas"
)

// Store is what the handlers need from the repository (store.Repository).
type Store interface {
	Load(ctx context.Context, id string) (*order.Order, error)
	Save(ctx context.Context, o *order.Order, md schemas.Metadata) error
}

// ConflictRetries is how many times a command is re-decided after a
// version conflict before the conflict is returned to the caller.
const ConflictRetries = 3

// Handler runs commands against a Store. Each command runs in a span
// ("order.place", "order.pay" …; internal/tracing) under ctx's span, or
// under md.Traceparent when ctx has none, and the events it saves carry
// that span's W3C traceparent (md.Traceparent is replaced by it). It is
// safe for concurrent use if the Store is.
type Handler struct {
	store      Store
	isConflict func(error) bool
}

// NewHandler returns a handler on s; isConflict tells a version conflict
// (store.ErrConflict) from other errors.
func NewHandler(s Store, isConflict func(error) bool) *Handler {
	return &Handler{store: s, isConflict: isConflict}
}

// Place creates order id and, when pay is non-nil, pays it in the same
// transaction (the import places and pays a sale atomically). It returns the
// store's error for a duplicate id or number unchanged.
func (h *Handler) Place(ctx context.Context, id string, in order.PlaceInput, then func(*order.Order) error, md schemas.Metadata) (err error) {
	ctx, span := tracing.Start(ctx, "order.place", md.Traceparent, tracing.KeyOrderID.String(id), tracing.KeyOrderNumber.String(in.Number))
	defer func() { tracing.End(span, err) }()
	md.Traceparent = tracing.Traceparent(ctx) // stored with the events in the outbox
	o := order.New(id)
	if err := o.Place(in); err != nil {
		return err
	}
	if then != nil {
		if err := then(o); err != nil {
			return err
		}
	}
	return h.store.Save(ctx, o, md)
}

// Pay pays order id in full.
func (h *Handler) Pay(ctx context.Context, id string, at time.Time, amount schemas.Money, ref string, md schemas.Metadata) error {
	return h.update(ctx, "order.pay", id, md, func(o *order.Order) error { return o.Pay(at, amount, ref) })
}

// Ship ships order id.
func (h *Handler) Ship(ctx context.Context, id string, at time.Time, carrier, tracking string, md schemas.Metadata) error {
	return h.update(ctx, "order.ship", id, md, func(o *order.Order) error { return o.Ship(at, carrier, tracking) })
}

// Cancel cancels order id.
func (h *Handler) Cancel(ctx context.Context, id string, at time.Time, reason string, md schemas.Metadata) error {
	return h.update(ctx, "order.cancel", id, md, func(o *order.Order) error { return o.Cancel(at, reason) })
}

// Refund refunds amount of order id.
func (h *Handler) Refund(ctx context.Context, id string, at time.Time, amount schemas.Money, reason string, md schemas.Metadata) error {
	return h.update(ctx, "order.refund", id, md, func(o *order.Order) error { return o.Refund(at, amount, reason) })
}

func (h *Handler) update(ctx context.Context, command, id string, md schemas.Metadata, decide func(*order.Order) error) (err error) {
	ctx, span := tracing.Start(ctx, command, md.Traceparent, tracing.KeyOrderID.String(id))
	defer func() { tracing.End(span, err) }()
	md.Traceparent = tracing.Traceparent(ctx) // stored with the events in the outbox
	for attempt := 0; attempt <= ConflictRetries; attempt++ {
		var o *order.Order
		if o, err = h.store.Load(ctx, id); err != nil {
			return err
		}
		if err = decide(o); err != nil {
			return err
		}
		if err = h.store.Save(ctx, o, md); err == nil || !h.isConflict(err) {
			return err
		}
	}
	return fmt.Errorf("after %d retries: %w", ConflictRetries, err)
}

// IsRuleError reports whether err is a refusal by the aggregate.
func IsRuleError(err error) bool {
	var re *order.RuleError
	return errors.As(err, &re)
}
