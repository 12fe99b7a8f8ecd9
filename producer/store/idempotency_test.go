package store_test

import (
	"context"
	"errors"
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
