package command_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/orderstream/orderstream/producer/command"
	"github.com/orderstream/orderstream/producer/order"
	"github.com/orderstream/orderstream/schemas"
	"github.com/shopspring/decimal"
)

var (
	t0          = time.Date(2011, 6, 1, 8, 41, 0, 0, time.UTC)
	errConflict = errors.New("conflict")
	errDown     = errors.New("database down")
)

func gbp(s string) schemas.Money {
	return schemas.NewMoney(decimal.RequireFromString(s), schemas.CurrencyGBP)
}

func placedSale(t *testing.T) order.State {
	t.Helper()
	o := order.New("o-1")
	if err := o.Place(order.PlaceInput{Number: "536370", Kind: schemas.KindSale, Country: "France", Currency: "GBP", PlacedAt: t0,
		Lines: []schemas.Line{{StockCode: "22728", Quantity: 8, UnitPrice: gbp("2.50")}}}); err != nil {
		t.Fatal(err)
	}
	return o.State()
}

// fakeStore serves a stored state and answers Save with SaveFn.
type fakeStore struct {
	state  order.State
	loads  int
	saves  int
	SaveFn func(n int, o *order.Order) error
}

func (f *fakeStore) Load(context.Context, string) (*order.Order, error) {
	f.loads++
	return order.Rehydrate(f.state), nil
}

func (f *fakeStore) Save(_ context.Context, o *order.Order, _ schemas.Metadata) error {
	f.saves++
	if err := f.SaveFn(f.saves, o); err != nil {
		return err
	}
	f.state = o.State()
	o.ClearChanges()
	return nil
}

func TestUpdateRetries(t *testing.T) {
	t.Parallel()
	isConflict := func(err error) bool { return errors.Is(err, errConflict) }
	tests := []struct {
		name      string
		saveFn    func(n int, o *order.Order) error
		give      func(h *command.Handler) error
		wantErr   error
		wantSaves int
	}{
		{
			name:      "saved at once",
			saveFn:    func(int, *order.Order) error { return nil },
			wantSaves: 1,
		},
		{
			name: "conflict then saved",
			saveFn: func(n int, _ *order.Order) error {
				if n == 1 {
					return errConflict
				}
				return nil
			},
			wantSaves: 2,
		},
		{
			name:      "conflicts exhaust the retries",
			saveFn:    func(int, *order.Order) error { return errConflict },
			wantErr:   errConflict,
			wantSaves: command.ConflictRetries + 1,
		},
		{
			name:      "other errors are not retried",
			saveFn:    func(int, *order.Order) error { return errDown },
			wantErr:   errDown,
			wantSaves: 1,
		},
		{
			name:   "a rule error is returned without saving",
			saveFn: func(int, *order.Order) error { return nil },
			give: func(h *command.Handler) error {
				return h.Pay(context.Background(), "o-1", t0, gbp("1"), "", schemas.Metadata{})
			},
			wantErr:   order.ErrAmountMismatch,
			wantSaves: 0,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := &fakeStore{state: placedSale(t), SaveFn: tt.saveFn}
			h := command.NewHandler(s, isConflict)
			give := tt.give
			if give == nil {
				give = func(h *command.Handler) error {
					return h.Pay(context.Background(), "o-1", t0, gbp("20"), "", schemas.Metadata{})
				}
			}
			err := give(h)
			if !errors.Is(err, tt.wantErr) || (err == nil) != (tt.wantErr == nil) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if s.saves != tt.wantSaves || s.loads != max(tt.wantSaves, 1) {
				t.Errorf("saves %d, loads %d; want %d saves, each after a fresh load", s.saves, s.loads, tt.wantSaves)
			}
			if tt.wantErr == nil && s.state.Status != schemas.StatusPaid {
				t.Errorf("status = %s, want paid", s.state.Status)
			}
			if errors.Is(tt.wantErr, order.ErrAmountMismatch) && !command.IsRuleError(err) {
				t.Errorf("IsRuleError(%v) = false", err)
			}
		})
	}
}

func TestPlaceThen(t *testing.T) {
	t.Parallel()
	var saved []int64
	s := &fakeStore{SaveFn: func(_ int, o *order.Order) error {
		for _, c := range o.Changes() {
			saved = append(saved, c.Version)
		}
		return nil
	}}
	h := command.NewHandler(s, func(error) bool { return false })
	in := order.PlaceInput{Number: "536370", Kind: schemas.KindSale, Country: "France", Currency: "GBP", PlacedAt: t0,
		Lines: []schemas.Line{{StockCode: "22728", Quantity: 8, UnitPrice: gbp("2.50")}}}
	err := h.Place(context.Background(), "o-1", in, func(o *order.Order) error { return o.Pay(t0, gbp("20"), "") }, schemas.Metadata{})
	if err != nil {
		t.Fatal(err)
	}
	if s.saves != 1 || len(saved) != 2 || saved[0] != 1 || saved[1] != 2 {
		t.Errorf("saves %d with versions %v: want one save of versions 1 and 2", s.saves, saved)
	}
	// A refused follow-up saves nothing.
	s2 := &fakeStore{SaveFn: func(int, *order.Order) error { return nil }}
	err = command.NewHandler(s2, func(error) bool { return false }).Place(context.Background(), "o-2", in,
		func(o *order.Order) error { return o.Pay(t0, gbp("1"), "") }, schemas.Metadata{})
	if !errors.Is(err, order.ErrAmountMismatch) || s2.saves != 0 {
		t.Errorf("err = %v, saves %d: want ErrAmountMismatch and no save", err, s2.saves)
	}
}
