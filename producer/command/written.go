package command

import (
	"context"
	"errors"
)

// WrittenBy reports whether the store holds an event of order id recorded
// under correlationID (store.Repository.WrittenBy): after a save whose
// outcome was unknown (the connection dropped at COMMIT) is retried and
// finds the order present, it tells the caller's own commit from an earlier
// one. It returns errors.ErrUnsupported when the store cannot tell.
func (h *Handler) WrittenBy(ctx context.Context, id, correlationID string) (bool, error) {
	w, ok := h.store.(interface {
		WrittenBy(ctx context.Context, id, correlationID string) (bool, error)
	})
	if !ok {
		return false, errors.ErrUnsupported
	}
	return w.WrittenBy(ctx, id, correlationID)
}
