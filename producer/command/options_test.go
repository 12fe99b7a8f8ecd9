package command_test

import (
	"context"
	"errors"
	"testing"

	"github.com/orderstream/orderstream/producer/command"
	"github.com/orderstream/orderstream/producer/order"
	"github.com/orderstream/orderstream/schemas"
)

// keyedStore is a fakeStore that keeps idempotency keys in memory, saved
// with the state as the real store does in one transaction.
type keyedStore struct {
	fakeStore
	keys map[string]command.Receipt
	fps  map[string][]byte
}

func (k *keyedStore) SaveKeyed(ctx context.Context, o *order.Order, md schemas.Metadata, key command.Key, r command.Receipt) error {
	if _, ok := k.keys[key.Key]; ok {
		return command.ErrKeyTaken
	}
	if err := k.Save(ctx, o, md); err != nil {
		return err
	}
	k.keys[key.Key], k.fps[key.Key] = r, key.Fingerprint
	return nil
}

func (k *keyedStore) FindKey(_ context.Context, scope, key string) (command.Key, command.Receipt, bool, error) {
	r, ok := k.keys[key]
	return command.Key{Scope: scope, Key: key, Fingerprint: k.fps[key]}, r, ok, nil
}

func TestRunOptions(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pay := command.Pay{At: t0, Amount: gbp("20")}
	isConflict := func(err error) bool { return errors.Is(err, errConflict) }

	s := &keyedStore{fakeStore: fakeStore{state: placedSale(t), SaveFn: func(int, *order.Order) error { return nil }},
		keys: map[string]command.Receipt{}, fps: map[string][]byte{}}
	h := command.NewHandler(s, isConflict)
	_, err := h.Run(ctx, "o-1", pay, schemas.Metadata{}, command.Options{IfVersion: 2})
	var vm *command.VersionMismatchError
	if !errors.As(err, &vm) || vm.Actual != 1 || vm.Expected != 2 || !errors.Is(err, command.ErrVersionMismatch) || s.saves != 0 {
		t.Fatalf("IfVersion 2 on version 1: %v, %d saves; want a mismatch and no save", err, s.saves)
	}
	key := &command.Key{Key: "k", Fingerprint: []byte("pay 20")}
	r1, err := h.Run(ctx, "o-1", pay, schemas.Metadata{}, command.Options{IfVersion: 1, Key: key})
	if err != nil || r1.Version != 2 || r1.Status != schemas.StatusPaid || r1.Replayed {
		t.Fatalf("first: %+v %v", r1, err)
	}
	r2, err := h.Run(ctx, "o-1", pay, schemas.Metadata{}, command.Options{IfVersion: 1, Key: key})
	if err != nil || !r2.Replayed || r2.Version != 2 || s.saves != 1 {
		t.Fatalf("retry: %+v %v, %d saves; want the first receipt replayed and one save", r2, err, s.saves)
	}
	_, err = h.Run(ctx, "o-1", command.Ship{At: t0}, schemas.Metadata{}, command.Options{Key: &command.Key{Key: "k", Fingerprint: []byte("ship")}})
	if !errors.Is(err, command.ErrKeyReused) {
		t.Fatalf("key reused for another command: %v", err)
	}
	plain := command.NewHandler(&fakeStore{state: placedSale(t), SaveFn: func(int, *order.Order) error { return nil }}, isConflict)
	if _, err := plain.Run(ctx, "o-1", pay, schemas.Metadata{}, command.Options{Key: key}); !errors.Is(err, command.ErrNoKeyStore) {
		t.Fatalf("key on a store without keys: %v", err)
	}
}
