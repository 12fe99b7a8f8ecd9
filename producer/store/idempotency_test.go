package store_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/orderstream/orderstream/producer/command"
	"github.com/orderstream/orderstream/producer/order"
	"github.com/orderstream/orderstream/producer/store"
	"github.com/orderstream/orderstream/schemas"
)

// TestKeysWithTheEffect: a key is stored in the effect's transaction (a
// refused save stores none), a second save under it writes nothing and
// returns ErrKeyTaken, and the purge deletes only keys past the retention.
func TestKeysWithTheEffect(t *testing.T) {
	t.Parallel()
	pool, repo := newRepo(t)
	ctx := context.Background()
	placeSale(t, repo, "o-1", "536370")
	paid := func() *order.Order {
		o, err := repo.Load(ctx, "o-1")
		if err != nil {
			t.Fatal(err)
		}
		if err := o.Pay(t0, gbp("20"), ""); err != nil {
			t.Fatal(err)
		}
		return o
	}
	k := command.Key{Scope: "client", Key: "k1", Fingerprint: []byte{1}}
	rc := command.Receipt{Command: "pay", OrderID: "o-1", Version: 2, Status: schemas.StatusPaid}

	stale := paid()
	placeSale(t, repo, "o-2", "536371") // unrelated
	if err := repo.SaveKeyed(ctx, paid(), schemas.Metadata{}, k, rc); err != nil {
		t.Fatal(err)
	}
	_, got, found, err := repo.FindKey(ctx, "client", "k1")
	if err != nil || !found || got != rc {
		t.Fatalf("FindKey = %+v %v %v, want %+v", got, found, err, rc)
	}
	if _, _, found, _ := repo.FindKey(ctx, "other client", "k1"); found {
		t.Fatal("a key of one scope found under another")
	}
	// The stale copy conflicts on the order: neither its event nor its key lands.
	if err := repo.SaveKeyed(ctx, stale, schemas.Metadata{}, command.Key{Scope: "client", Key: "k2", Fingerprint: []byte{2}}, rc); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("stale save: %v, want ErrConflict", err)
	}
	if _, _, found, _ := repo.FindKey(ctx, "client", "k2"); found {
		t.Fatal("the key of a refused save was stored")
	}
	o2, err := repo.Load(ctx, "o-2")
	if err != nil {
		t.Fatal(err)
	}
	if err := o2.Pay(t0, gbp("20"), ""); err != nil {
		t.Fatal(err)
	}
	if err := repo.SaveKeyed(ctx, o2, schemas.Metadata{}, k, rc); !errors.Is(err, command.ErrKeyTaken) {
		t.Fatalf("second save under the key: %v, want ErrKeyTaken", err)
	}
	if n := count(t, pool, `SELECT count(*) FROM outbox WHERE aggregate_id = 'o-2'`); n != 1 {
		t.Fatalf("o-2 has %d events, want only its order.placed", n)
	}

	if _, err := pool.Exec(ctx, `UPDATE idempotency_keys SET created_at = now() - interval '25 hours' WHERE key = 'k1'`); err != nil {
		t.Fatal(err)
	}
	if err := repo.SaveKeyed(ctx, o2, schemas.Metadata{}, command.Key{Scope: "client", Key: "k3", Fingerprint: []byte{3}}, rc); err != nil {
		t.Fatal(err)
	}
	n, err := repo.PurgeKeys(ctx, 24*time.Hour)
	if err != nil || n != 1 {
		t.Fatalf("purge: %d keys, %v; want the one older than 24 h", n, err)
	}
	if _, _, found, _ := repo.FindKey(ctx, "client", "k3"); !found {
		t.Fatal("the purge deleted a key within the retention")
	}
}

// TestKeyedPlace: a keyed place stores the order and its key together; a
// place refused (the id or the number exists) or under a taken key writes
// neither, with the error of its cause, and leaves the pool's connections
// usable (each refusal rolls its transaction back).
func TestKeyedPlace(t *testing.T) {
	t.Parallel()
	pool, repo := newRepo(t)
	ctx := context.Background()
	newSale := func(id, number string) *order.Order {
		o := order.New(id)
		if err := o.Place(order.PlaceInput{Number: number, Kind: schemas.KindSale, Country: "France", Currency: "GBP", PlacedAt: t0,
			Lines: []schemas.Line{{StockCode: "22728", Quantity: 8, UnitPrice: gbp("2.50")}}}); err != nil {
			t.Fatal(err)
		}
		return o
	}
	key := func(k string) command.Key { return command.Key{Scope: "client", Key: k, Fingerprint: []byte(k)} }
	rc := command.Receipt{Command: "place", OrderID: "o-1", Version: 1, Status: schemas.StatusPlaced}
	if err := repo.SaveKeyed(ctx, newSale("o-1", "600001"), schemas.Metadata{}, key("p1"), rc); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name    string
		o       *order.Order
		key     string
		wantErr error
		noOrder string // an order id that must not exist afterwards
	}{
		{"same id", newSale("o-1", "600002"), "p2", store.ErrConflict, ""},
		{"same number", newSale("o-2", "600001"), "p3", store.ErrDuplicateNumber, "o-2"},
		{"key taken", newSale("o-3", "600003"), "p1", command.ErrKeyTaken, "o-3"},
	} {
		if err := repo.SaveKeyed(ctx, tt.o, schemas.Metadata{}, key(tt.key), rc); !errors.Is(err, tt.wantErr) {
			t.Errorf("%s: %v, want %v", tt.name, err, tt.wantErr)
		}
		if tt.key != "p1" {
			if _, _, found, _ := repo.FindKey(ctx, "client", tt.key); found {
				t.Errorf("%s: the key of a refused place was stored", tt.name)
			}
		}
		if tt.noOrder != "" && count(t, pool, `SELECT count(*) FROM orders WHERE order_id = $1`, tt.noOrder) != 0 {
			t.Errorf("%s: order %s was written", tt.name, tt.noOrder)
		}
	}
	if n := count(t, pool, `SELECT count(*) FROM outbox WHERE aggregate_id = 'o-1'`); n != 1 {
		t.Errorf("o-1 has %d events, want its one order.placed", n)
	}
	// Every connection went back clean: many saves after the refusals work.
	for i := range 10 {
		if err := repo.SaveKeyed(ctx, newSale(fmt.Sprintf("o-%d", 10+i), fmt.Sprintf("6001%02d", i)), schemas.Metadata{}, key(fmt.Sprintf("q%d", i)), rc); err != nil {
			t.Fatalf("save %d after the refusals: %v", i, err)
		}
	}
	if n := count(t, pool, `SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND state LIKE 'idle in transaction%'`); n != 0 {
		t.Errorf("%d connections left idle in a transaction", n)
	}
}
