package rebuild

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/orderstream/orderstream/internal/testenv"
)

// TestVerify: on the serving generation a daemon filled, Verify finds no
// drift; an order whose event lies past the group's committed offsets is in
// flight, not drift; drift injected by hand (a ClickHouse row deleted, a
// search document's version lowered) is reported naming exactly that order;
// a sample compares that many orders.
func TestVerify(t *testing.T) {
	brokers := testenv.KafkaBrokers(t)
	tests := []struct {
		name  string
		model func(testing.TB) model
		// inject makes order id drift in generation 1 of p and returns the
		// drift Verify must report.
		inject func(t *testing.T, ctx context.Context, p Projection, id string, version int64) OrderDrift
	}{
		{"analytics", analyticsModel, func(t *testing.T, ctx context.Context, p Projection, id string, version int64) OrderDrift {
			a := p.(*Analytics)
			// A mutation, applied asynchronously: Verify is polled below.
			q := fmt.Sprintf("ALTER TABLE `%s`.`orders_g1` DELETE WHERE order_id = ?", a.cfg.Database)
			if err := a.conn.Exec(ctx, q, id); err != nil {
				t.Fatal(err)
			}
			return OrderDrift{OrderID: id, Drift: VerdictMissing, ReadModel: 0, WriteSide: version}
		}},
		{"search", searchModel, func(t *testing.T, ctx context.Context, p Projection, id string, version int64) OrderDrift {
			s := p.(*Search)
			body := fmt.Sprintf("{\"update\":{\"_index\":%q,\"_id\":%q}}\n{\"doc\":{\"version\":1}}\n", s.cfg.Names().Index(1), id)
			if r, err := s.cfg.Engine.Bulk(ctx, []byte(body)); err != nil || !r.OK() {
				t.Fatal(engineErr(r.Status, r.Body, err))
			}
			return OrderDrift{OrderID: id, Drift: VerdictStale, ReadModel: 1, WriteSide: version}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := tc.model(t)
			events, topicName, group := filledByDaemon(t, brokers, m)
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			verify := func(ws WriteSide, sample int) Verification {
				t.Helper()
				v, err := Verify(ctx, m.p, VerifyConfig{Guard: GuardConfig{Brokers: brokers, Topic: topicName, WriteSide: ws},
					Group: group, Sample: sample, Rand: rand.New(rand.NewPCG(1, 2))})
				if err != nil {
					t.Fatal(err)
				}
				return v
			}
			want, _ := eventsWriteSide(events).RelayedVersions(ctx)
			if v := verify(eventsWriteSide(events), 0); !v.OK() || v.Generation != 1 || v.Summary.Agree != len(want) {
				t.Fatalf("clean read model: %+v, want no drift and %d orders agreeing in generation 1", v, len(want))
			}

			late := newOrder(t, events) // past the group's offsets: the daemon is stopped
			produce(t, brokers, topicName, late)
			ws := append(eventsWriteSide(events), late)
			if v := verify(ws, 0); !v.OK() || v.Summary.InFlight != 1 {
				t.Fatalf("order %s in flight: %+v, want no drift and 1 in flight", late.AggregateID, v)
			}

			var id string
			for _, o := range slices.Sorted(func(yield func(string) bool) {
				for k := range want {
					if !yield(k) {
						return
					}
				}
			}) {
				if want[o] >= 2 {
					id = o
					break
				}
			}
			drift := tc.inject(t, ctx, m.p, id, want[id])
			eventually(t, time.Minute, "drift of "+id+" reported", func() error {
				if v := verify(ws, 0); v.OK() || len(v.Drift) != 1 || v.Drift[0] != drift {
					return fmt.Errorf("drift %+v (summary %s), want exactly %+v", v.Drift, v.Summary, drift)
				}
				return nil
			})

			v := verify(ws, 10)
			if v.Sample != 10 || v.Summary.Orders != 10 || v.Summary.Agree+v.Summary.InFlight+len(v.Drift) != 10 {
				t.Fatalf("sample of 10: %+v, want 10 orders compared", v)
			}
		})
	}
}
