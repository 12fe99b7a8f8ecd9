package store_test

import (
	"context"
	"errors"
	"log/slog"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/orderstream/orderstream/internal/testenv"
	"github.com/orderstream/orderstream/producer/command"
	"github.com/orderstream/orderstream/producer/order"
	"github.com/orderstream/orderstream/producer/store"
	"github.com/orderstream/orderstream/schemas"
	"github.com/shopspring/decimal"
)

var t0 = time.Date(2011, 6, 1, 8, 41, 0, 0, time.UTC)

func newRepo(t *testing.T) (*pgxpool.Pool, *store.Repository) {
	t.Helper()
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, testenv.NewDatabase(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	if _, err := store.Migrate(ctx, pool, slog.New(slog.DiscardHandler)); err != nil {
		t.Fatal(err)
	}
	v, err := schemas.NewValidator()
	if err != nil {
		t.Fatal(err)
	}
	return pool, store.NewRepository(pool, v)
}

func gbp(s string) schemas.Money {
	return schemas.NewMoney(decimal.RequireFromString(s), schemas.CurrencyGBP)
}

// placeSale saves a new sale id/number of total 20 GBP and returns it.
func placeSale(t *testing.T, repo *store.Repository, id, number string) {
	t.Helper()
	o := order.New(id)
	err := o.Place(order.PlaceInput{Number: number, Kind: schemas.KindSale, Country: "France", Currency: "GBP", PlacedAt: t0,
		Lines: []schemas.Line{{StockCode: "22728", Description: "ALARM CLOCK", Quantity: 8, UnitPrice: gbp("2.50")}}})
	if err != nil {
		t.Fatal(err)
	}
	if err := repo.Save(context.Background(), o, schemas.Metadata{}); err != nil {
		t.Fatal(err)
	}
}

func count(t *testing.T, pool *pgxpool.Pool, q string, args ...any) int {
	t.Helper()
	var n int
	if err := pool.QueryRow(context.Background(), q, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return n
}

func TestSaveAndLoad(t *testing.T) {
	t.Parallel()
	pool, repo := newRepo(t)
	ctx := context.Background()
	placeSale(t, repo, "o-1", "536370")
	o, err := repo.Load(ctx, "o-1")
	if err != nil {
		t.Fatal(err)
	}
	s := o.State()
	if s.Number != "536370" || s.Version != 1 || s.Status != schemas.StatusPlaced || !s.Total.Equal(gbp("20")) ||
		len(s.Lines) != 1 || s.Lines[0].LineNo != 1 || !s.Lines[0].UnitPrice.Equal(gbp("2.5")) || !s.PlacedAt.Equal(t0) || s.CustomerID != "" {
		t.Fatalf("loaded state = %+v", s)
	}
	if err := o.Pay(t0, gbp("20"), "r"); err != nil {
		t.Fatal(err)
	}
	if err := repo.Save(ctx, o, schemas.Metadata{CorrelationID: "c"}); err != nil {
		t.Fatal(err)
	}
	if len(o.Changes()) != 0 || o.PersistedVersion() != 2 {
		t.Errorf("after Save: %d pending, persisted %d", len(o.Changes()), o.PersistedVersion())
	}
	if n := count(t, pool, `SELECT count(*) FROM outbox WHERE aggregate_id = 'o-1'`); n != 2 {
		t.Errorf("outbox rows = %d, want 2", n)
	}
	if _, err := repo.Load(ctx, "nope"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Load of a missing order: %v, want ErrNotFound", err)
	}
	if id, err := repo.IDByNumber(ctx, "536370"); err != nil || id != "o-1" {
		t.Errorf("IDByNumber = %q, %v", id, err)
	}
}

// TestOptimisticConcurrency: two writers load version 1 and both decide;
// the second save gets ErrConflict and writes nothing.
func TestOptimisticConcurrency(t *testing.T) {
	t.Parallel()
	pool, repo := newRepo(t)
	ctx := context.Background()
	placeSale(t, repo, "o-1", "536370")
	a, err := repo.Load(ctx, "o-1")
	if err != nil {
		t.Fatal(err)
	}
	b, err := repo.Load(ctx, "o-1")
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Pay(t0, gbp("20"), ""); err != nil {
		t.Fatal(err)
	}
	if err := b.Cancel(t0, "changed my mind"); err != nil {
		t.Fatal(err)
	}
	if err := repo.Save(ctx, a, schemas.Metadata{}); err != nil {
		t.Fatal(err)
	}
	if err := repo.Save(ctx, b, schemas.Metadata{}); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("second save: %v, want ErrConflict", err)
	}
	if len(b.Changes()) != 1 {
		t.Errorf("a failed save cleared the pending changes")
	}
	cur, err := repo.Load(ctx, "o-1")
	if err != nil {
		t.Fatal(err)
	}
	if s := cur.State(); s.Status != schemas.StatusPaid || s.Version != 2 {
		t.Errorf("state = %s v%d, want paid v2", s.Status, s.Version)
	}
	if n := count(t, pool, `SELECT count(*) FROM outbox WHERE aggregate_id = 'o-1' AND event_type = 'order.cancelled'`); n != 0 {
		t.Errorf("the conflicting cancellation reached the outbox")
	}
}

// TestHandlerRetryRedecides: a command whose first save conflicts is
// decided again on the fresh state, not blindly re-saved.
func TestHandlerRetryRedecides(t *testing.T) {
	t.Parallel()
	_, repo := newRepo(t)
	ctx := context.Background()
	isConflict := func(err error) bool { return errors.Is(err, store.ErrConflict) }

	tests := []struct {
		name       string
		setup      func(t *testing.T, id string) // after placing
		concurrent func(o *order.Order) error    // another writer's change, saved between the handler's load and save
		do         func(h *command.Handler, id string) error
		wantErr    error
		wantStatus schemas.Status
		wantVer    int64
	}{
		{
			name:       "pay loses to a cancellation",
			concurrent: func(o *order.Order) error { return o.Cancel(t0, "fraud") },
			do: func(h *command.Handler, id string) error {
				return h.Pay(ctx, id, t0, gbp("20"), "", schemas.Metadata{})
			},
			wantErr: order.ErrCancelled, wantStatus: schemas.StatusCancelled, wantVer: 2,
		},
		{
			name: "refund of the rest after a concurrent partial refund",
			setup: func(t *testing.T, id string) {
				o, err := repo.Load(ctx, id)
				if err != nil {
					t.Fatal(err)
				}
				if err := o.Pay(t0, gbp("20"), ""); err != nil {
					t.Fatal(err)
				}
				if err := repo.Save(ctx, o, schemas.Metadata{}); err != nil {
					t.Fatal(err)
				}
			},
			concurrent: func(o *order.Order) error { return o.Refund(t0, gbp("5"), "") },
			do: func(h *command.Handler, id string) error {
				return h.Refund(ctx, id, t0, gbp("15"), "", schemas.Metadata{})
			},
			wantStatus: schemas.StatusRefunded, wantVer: 4,
		},
		{
			name: "over-refund after a concurrent refund is refused",
			setup: func(t *testing.T, id string) {
				o, _ := repo.Load(ctx, id)
				if err := o.Pay(t0, gbp("20"), ""); err != nil {
					t.Fatal(err)
				}
				if err := repo.Save(ctx, o, schemas.Metadata{}); err != nil {
					t.Fatal(err)
				}
			},
			concurrent: func(o *order.Order) error { return o.Refund(t0, gbp("5"), "") },
			do: func(h *command.Handler, id string) error {
				return h.Refund(ctx, id, t0, gbp("20"), "", schemas.Metadata{})
			},
			wantErr: order.ErrAmountMismatch, wantStatus: schemas.StatusPaid, wantVer: 3,
		},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id := "o-" + tt.name
			placeSale(t, repo, id, "5363"+string(rune('0'+i))+"0")
			if tt.setup != nil {
				tt.setup(t, id)
			}
			interfered := 0
			s := &interferingStore{repo: repo, before: func() error {
				if interfered > 0 {
					return nil
				}
				interfered++
				o, err := repo.Load(ctx, id)
				if err != nil {
					return err
				}
				if err := tt.concurrent(o); err != nil {
					return err
				}
				return repo.Save(ctx, o, schemas.Metadata{})
			}}
			err2 := tt.do(command.NewHandler(s, isConflict), id)
			if !errors.Is(err2, tt.wantErr) || (err2 == nil) != (tt.wantErr == nil) {
				t.Fatalf("err = %v, want %v", err2, tt.wantErr)
			}
			if s.saves < 1 || interfered != 1 {
				t.Fatalf("the concurrent writer did not interfere (saves %d)", s.saves)
			}
			cur, err3 := repo.Load(ctx, id)
			if err3 != nil {
				t.Fatal(err3)
			}
			if st := cur.State(); st.Status != tt.wantStatus || st.Version != tt.wantVer {
				t.Errorf("state %s v%d, want %s v%d", st.Status, st.Version, tt.wantStatus, tt.wantVer)
			}
		})
	}
}

// interferingStore runs before() ahead of every Save: another writer
// committing between the handler's Load and Save.
type interferingStore struct {
	repo   *store.Repository
	before func() error
	saves  int
}

func (s *interferingStore) Load(ctx context.Context, id string) (*order.Order, error) {
	return s.repo.Load(ctx, id)
}

func (s *interferingStore) Save(ctx context.Context, o *order.Order, md schemas.Metadata) error {
	s.saves++
	if err := s.before(); err != nil {
		return err
	}
	return s.repo.Save(ctx, o, md)
}

func TestDuplicates(t *testing.T) {
	t.Parallel()
	pool, repo := newRepo(t)
	ctx := context.Background()
	placeSale(t, repo, "o-1", "536370")
	tests := []struct {
		name, id, number string
		wantErr          error
	}{
		{"same number, other id", "o-2", "536370", store.ErrDuplicateNumber},
		{"same id, other number", "o-1", "536371", store.ErrConflict},
		{"same id and number", "o-1", "536370", store.ErrConflict},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := order.New(tt.id)
			if err := o.Place(order.PlaceInput{Number: tt.number, Kind: schemas.KindSale, Country: "UK", Currency: "GBP", PlacedAt: t0,
				Lines: []schemas.Line{{StockCode: "X", Quantity: 1, UnitPrice: gbp("1")}}}); err != nil {
				t.Fatal(err)
			}
			if err := repo.Save(ctx, o, schemas.Metadata{}); !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
		})
	}
	if n := count(t, pool, `SELECT count(*) FROM orders`); n != 1 {
		t.Errorf("orders = %d, want 1", n)
	}
	if n := count(t, pool, `SELECT count(*) FROM order_lines`); n != 1 {
		t.Errorf("order lines = %d, want 1", n)
	}
	if n := count(t, pool, `SELECT count(*) FROM outbox`); n != 1 {
		t.Errorf("outbox rows = %d, want 1", n)
	}
}

// TestSaveIsOneTransaction: when the outbox insert fails, neither the order
// nor its lines are written.
func TestSaveIsOneTransaction(t *testing.T) {
	t.Parallel()
	pool, repo := newRepo(t)
	ctx := context.Background()
	// A stray outbox row takes (o-9, version 2): the order row and lines
	// insert fine, then the second outbox insert violates the unique key.
	if _, err := pool.Exec(ctx, `INSERT INTO outbox (event_id, aggregate_type, aggregate_id, aggregate_version, event_type, schema_version, occurred_at, envelope)
		VALUES (gen_random_uuid(), 'order', 'o-9', 2, 'order.paid', 1, now(), '{}')`); err != nil {
		t.Fatal(err)
	}
	o := order.New("o-9")
	if err := o.Place(order.PlaceInput{Number: "536399", Kind: schemas.KindSale, Country: "UK", Currency: "GBP", PlacedAt: t0,
		Lines: []schemas.Line{{StockCode: "X", Quantity: 2, UnitPrice: gbp("1.5")}}}); err != nil {
		t.Fatal(err)
	}
	if err := o.Pay(t0, gbp("3"), ""); err != nil {
		t.Fatal(err)
	}
	if err := repo.Save(ctx, o, schemas.Metadata{}); err == nil {
		t.Fatal("save succeeded despite the outbox conflict")
	}
	for q, want := range map[string]int{
		`SELECT count(*) FROM orders WHERE order_id = 'o-9'`:      0,
		`SELECT count(*) FROM order_lines WHERE order_id = 'o-9'`: 0,
		`SELECT count(*) FROM outbox WHERE aggregate_id = 'o-9'`:  1,
	} {
		if got := count(t, pool, q); got != want {
			t.Errorf("%s = %d, want %d", q, got, want)
		}
	}
}
