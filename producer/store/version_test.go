package store_test

import (
	"context"
	"errors"
	"testing"

	"github.com/orderstream/orderstream/producer/order"
	"github.com/orderstream/orderstream/producer/store"
	"github.com/orderstream/orderstream/schemas"
)

// TestEventVersion: the write side emits v2 by default and v1 with
// WithEventVersion(1) (outbox column and envelope agree, the v1 payload is
// the v1 shape), and refuses, writing nothing, an order.placed v1 cannot
// carry (a channel).
func TestEventVersion(t *testing.T) {
	t.Parallel()
	pool, repo := newRepo(t)
	ctx := context.Background()
	v, err := schemas.NewValidator()
	if err != nil {
		t.Fatal(err)
	}
	v1 := store.NewRepository(pool, v, store.WithEventVersion(1))
	placeSale(t, repo, "o-2", "536371")
	placeSale(t, v1, "o-1", "536370")
	for _, tt := range []struct {
		id      string
		version int
		member  string // a member of the payload only this version has
	}{{"o-1", 1, "country"}, {"o-2", 2, "customer"}} {
		var col, env int
		var has bool
		err := pool.QueryRow(ctx, `SELECT schema_version, (envelope->>'schema_version')::int, (envelope->'payload')::jsonb ? $2
			FROM outbox WHERE aggregate_id = $1`, tt.id, tt.member).Scan(&col, &env, &has)
		if err != nil || col != tt.version || env != tt.version || !has {
			t.Errorf("order %s: outbox schema_version %d, envelope %d, payload has %s %v (%v); want %d", tt.id, col, env, tt.member, has, err, tt.version)
		}
	}

	o := order.New("o-3")
	if err := o.Place(order.PlaceInput{Number: "536372", Kind: schemas.KindSale, Country: "France", Currency: "GBP", PlacedAt: t0,
		Channel: schemas.ChannelPhone, Lines: []schemas.Line{{StockCode: "22728", Quantity: 1, UnitPrice: gbp("2.50")}}}); err != nil {
		t.Fatal(err)
	}
	if err := v1.Save(ctx, o, schemas.Metadata{}); !errors.Is(err, schemas.ErrOutOfRange) {
		t.Fatalf("v1 save of a placed with a channel = %v, want ErrOutOfRange", err)
	}
	if n := count(t, pool, `SELECT count(*) FROM orders WHERE order_id = 'o-3'`); n != 0 {
		t.Fatalf("the refused order was written (%d rows)", n)
	}
}
