package command

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/orderstream/orderstream/producer/order"
	"github.com/orderstream/orderstream/schemas"
)

// Command is one command on an existing order, run by Handler.Run: Pay,
// Ship, Cancel or Refund.
type Command interface {
	// Name is the command's name: pay, ship, cancel or refund.
	Name() string
	// Apply asks the aggregate to decide; it returns its *order.RuleError.
	Apply(o *order.Order) error
}

// Pay pays an order in full: Amount must equal its total (order.Order.Pay).
type Pay struct {
	At        time.Time
	Amount    schemas.Money
	Reference string
}

// Ship ships a paid order (order.Order.Ship).
type Ship struct {
	At       time.Time
	Carrier  string
	Tracking string
}

// Cancel cancels a placed or paid sale; Reason is required (order.Order.Cancel).
type Cancel struct {
	At     time.Time
	Reason string
}

// Refund refunds Amount of what was paid (order.Order.Refund).
type Refund struct {
	At     time.Time
	Amount schemas.Money
	Reason string
}

// Name returns "pay".
func (Pay) Name() string { return "pay" }

// Name returns "ship".
func (Ship) Name() string { return "ship" }

// Name returns "cancel".
func (Cancel) Name() string { return "cancel" }

// Name returns "refund".
func (Refund) Name() string { return "refund" }

// Apply records order.paid.
func (c Pay) Apply(o *order.Order) error { return o.Pay(c.At, c.Amount, c.Reference) }

// Apply records order.shipped.
func (c Ship) Apply(o *order.Order) error { return o.Ship(c.At, c.Carrier, c.Tracking) }

// Apply records order.cancelled.
func (c Cancel) Apply(o *order.Order) error { return o.Cancel(c.At, c.Reason) }

// Apply records order.refunded.
func (c Refund) Apply(o *order.Order) error { return o.Refund(c.At, c.Amount, c.Reason) }

// Options make a command conditional, idempotent or both. The zero value
// is neither: the command is re-decided on a version conflict, as Pay,
// Ship, Cancel and Refund do.
type Options struct {
	// IfVersion, when above 0, runs the command only on the order at exactly
	// this aggregate_version (HTTP If-Match); otherwise it returns a
	// *VersionMismatchError and writes nothing. A conflicting writer is
	// then not retried over: its new version is the mismatch.
	IfVersion int64
	// Key, when non-nil, makes the command idempotent: it is stored with
	// the command's effect in one transaction (the store must be a
	// KeyStore), and a later command with the same Scope and Key returns
	// the first Receipt (Replayed set) without a second effect, or
	// ErrKeyReused when its Fingerprint differs.
	Key *Key
}

// Key is an idempotency key (the HTTP Idempotency-Key header).
type Key struct {
	// Scope separates the keys of callers (the API uses the token's
	// subject), so that two clients never share a key.
	Scope string
	// Key is the client's key.
	Key string
	// Fingerprint identifies the command the key was first used for (the
	// API: SHA-256 of command, order and normalized body); a reuse with
	// another fingerprint is refused with ErrKeyReused.
	Fingerprint []byte
}

// Receipt is what a committed command returns, and what an idempotency key
// remembers of it.
type Receipt struct {
	// Command is place, pay, ship, cancel or refund.
	Command string
	// OrderID is the order's aggregate id.
	OrderID string
	// Version is the order's aggregate_version after the command: the
	// consistency token a query can wait for.
	Version int64
	// Status is the order's status after the command.
	Status schemas.Status
	// Replayed is true when the receipt is that of an earlier command with
	// the same idempotency key: nothing was written now.
	Replayed bool
}

// KeyStore is a Store that also keeps idempotency keys (store.Repository).
type KeyStore interface {
	Store
	// SaveKeyed is Save that also records k with r in the same
	// transaction; when (k.Scope, k.Key) exists already it writes nothing
	// and returns an error wrapping ErrKeyTaken.
	SaveKeyed(ctx context.Context, o *order.Order, md schemas.Metadata, k Key, r Receipt) error
	// FindKey returns the key stored under scope and key with its receipt;
	// found is false when there is none.
	FindKey(ctx context.Context, scope, key string) (k Key, r Receipt, found bool, err error)
}

// Errors of Run and PlaceOrder.
var (
	// ErrVersionMismatch is wrapped by *VersionMismatchError (HTTP 412).
	ErrVersionMismatch = errors.New("order version does not match")
	// ErrKeyReused: the idempotency key was used before for another
	// command or body (HTTP 422).
	ErrKeyReused = errors.New("idempotency key already used for another request")
	// ErrKeyTaken is wrapped by KeyStore.SaveKeyed when the key exists:
	// another request with that key committed first.
	ErrKeyTaken = errors.New("idempotency key already stored")
	// ErrNoKeyStore: Options.Key was given but the Store keeps no keys.
	ErrNoKeyStore = errors.New("the store keeps no idempotency keys")
)

// VersionMismatchError reports a conditional command on an order whose
// version is not the expected one.
type VersionMismatchError struct {
	OrderID  string
	Expected int64
	Actual   int64
}

func (e *VersionMismatchError) Error() string {
	return fmt.Sprintf("order %s is at version %d, not %d", e.OrderID, e.Actual, e.Expected)
}

// Unwrap returns ErrVersionMismatch.
func (e *VersionMismatchError) Unwrap() error { return ErrVersionMismatch }

// Run runs c on order id under opts and returns its receipt. Without
// opts.IfVersion a version conflict re-decides c on fresh state up to
// ConflictRetries times, as Pay does; with it the conflict becomes a
// *VersionMismatchError. With opts.Key the key is checked before every
// attempt, so a retry racing the original returns the original's receipt.
// Errors: the store's (its ErrNotFound for an unknown order), the
// aggregate's *order.RuleError, *VersionMismatchError, ErrKeyReused.
func (h *Handler) Run(ctx context.Context, id string, c Command, md schemas.Metadata, opts Options) (Receipt, error) {
	return h.run(ctx, opts, func() (*order.Order, Receipt, error) {
		o, err := h.store.Load(ctx, id)
		if err != nil {
			return nil, Receipt{}, err
		}
		if opts.IfVersion > 0 && o.Version() != opts.IfVersion {
			return nil, Receipt{}, &VersionMismatchError{OrderID: id, Expected: opts.IfVersion, Actual: o.Version()}
		}
		if err := c.Apply(o); err != nil {
			return nil, Receipt{}, err
		}
		return o, receipt(c.Name(), o), nil
	}, md)
}

// PlaceOrder places order id (as Place without a follow-up) under opts and
// returns its receipt (version 1). opts.IfVersion must be 0: a new order
// has no version to match. Errors: as Place, and ErrKeyReused.
func (h *Handler) PlaceOrder(ctx context.Context, id string, in order.PlaceInput, md schemas.Metadata, opts Options) (Receipt, error) {
	if opts.IfVersion != 0 {
		return Receipt{}, fmt.Errorf("place order %s: a new order has no version to match (IfVersion %d)", id, opts.IfVersion)
	}
	return h.run(ctx, opts, func() (*order.Order, Receipt, error) {
		o := order.New(id)
		if err := o.Place(in); err != nil {
			return nil, Receipt{}, err
		}
		return o, receipt("place", o), nil
	}, md)
}

func receipt(name string, o *order.Order) Receipt {
	return Receipt{Command: name, OrderID: o.ID(), Version: o.Version(), Status: o.State().Status}
}

// run decides and saves, retrying a version conflict (without IfVersion)
// or a key another request stored first, and answering from the key when
// it exists.
func (h *Handler) run(ctx context.Context, opts Options, decide func() (*order.Order, Receipt, error), md schemas.Metadata) (Receipt, error) {
	var ks KeyStore
	if opts.Key != nil {
		var ok bool
		if ks, ok = h.store.(KeyStore); !ok {
			return Receipt{}, ErrNoKeyStore
		}
	}
	var err error
	for attempt := 0; attempt <= ConflictRetries; attempt++ {
		if ks != nil {
			if r, found, ferr := h.replay(ctx, ks, *opts.Key); ferr != nil || found {
				return r, ferr
			}
		}
		o, r, derr := decide()
		if derr != nil {
			if ks != nil {
				// The state decided on may be the effect of a request with
				// this very key that committed after the check above (key
				// and effect commit together): answer with its receipt.
				if r, found, ferr := h.replay(ctx, ks, *opts.Key); ferr != nil || found {
					return r, ferr
				}
			}
			return Receipt{}, derr
		}
		if ks != nil {
			err = ks.SaveKeyed(ctx, o, md, *opts.Key, r)
		} else {
			err = h.store.Save(ctx, o, md)
		}
		if err == nil {
			return r, nil
		}
		if !errors.Is(err, ErrKeyTaken) && !h.isConflict(err) {
			return Receipt{}, err
		}
	}
	return Receipt{}, fmt.Errorf("after %d retries: %w", ConflictRetries, err)
}

// replay returns the receipt stored under k, if any.
func (h *Handler) replay(ctx context.Context, ks KeyStore, k Key) (Receipt, bool, error) {
	stored, r, found, err := ks.FindKey(ctx, k.Scope, k.Key)
	if err != nil || !found {
		return Receipt{}, false, err
	}
	if !bytes.Equal(stored.Fingerprint, k.Fingerprint) {
		return Receipt{}, true, fmt.Errorf("idempotency key %q (first used for %s of order %s): %w", k.Key, r.Command, r.OrderID, ErrKeyReused)
	}
	r.Replayed = true
	return r, true, nil
}
