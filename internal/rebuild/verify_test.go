package rebuild

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/orderstream/orderstream/internal/testenv"
	"github.com/orderstream/orderstream/internal/testfixture"
	"github.com/orderstream/orderstream/schemas"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// TestVerify: on the serving generation a daemon filled, Verify finds no
// drift, comparing every order's version, status, total and line count with
// a write side folded from the events (schemas.Fold); an order whose event
// lies past the group's committed offsets is in flight, not drift; drift
// injected by hand is reported naming exactly those orders: analytics a
// row of orders deleted (missing) and a line_count changed, search a
// document's version lowered (stale) and its total_milli changed, and the
// periodic check's metrics count them (and a check that failed); a sample
// compares that many orders.
func TestVerify(t *testing.T) {
	brokers := testenv.KafkaBrokers(t)
	tests := []struct {
		name  string
		model func(testing.TB) model
		// inject makes order a drift by its version and order b by a fact
		// in generation 1 of p, and returns the drift Verify must report.
		inject func(t *testing.T, ctx context.Context, m model, a, b string, want map[string]Facts) []OrderDrift
	}{
		{"analytics", analyticsModel, func(t *testing.T, ctx context.Context, m model, a, b string, want map[string]Facts) []OrderDrift {
			// Mutations, applied asynchronously: Verify is polled below.
			if err := m.conn.Exec(ctx, fmt.Sprintf("ALTER TABLE `%s`.`orders_g1` DELETE WHERE order_id = ?", m.db), a); err != nil {
				t.Fatal(err)
			}
			if err := m.conn.Exec(ctx, fmt.Sprintf("ALTER TABLE `%s`.`orders_g1` UPDATE line_count = line_count + 1 WHERE order_id = ?", m.db), b); err != nil {
				t.Fatal(err)
			}
			return []OrderDrift{
				{OrderID: a, Drift: VerdictMissing, ReadModel: 0, WriteSide: want[a].Version},
				{OrderID: b, Drift: VerdictWrongLines, ReadModel: want[b].Version, WriteSide: want[b].Version,
					Detail: fmt.Sprintf("read model %d lines, write side %d", want[b].Lines+1, want[b].Lines)},
			}
		}},
		{"search", searchModel, func(t *testing.T, ctx context.Context, m model, a, b string, want map[string]Facts) []OrderDrift {
			index := m.search.Names().Index(1)
			body := fmt.Sprintf("{\"update\":{\"_index\":%q,\"_id\":%q}}\n{\"doc\":{\"version\":1}}\n", index, a) +
				fmt.Sprintf("{\"update\":{\"_index\":%q,\"_id\":%q}}\n{\"doc\":{\"total_milli\":%d}}\n", index, b, want[b].TotalMilli+1000)
			if r, err := m.search.Engine.Bulk(ctx, []byte(body)); err != nil || !r.OK() {
				t.Fatalf("bulk: %v (status %d: %s)", err, r.Status, r.Body)
			}
			return []OrderDrift{
				{OrderID: a, Drift: VerdictStale, ReadModel: 1, WriteSide: want[a].Version},
				{OrderID: b, Drift: VerdictWrongTotal, ReadModel: want[b].Version, WriteSide: want[b].Version,
					Detail: fmt.Sprintf("read model %s, write side %s", milliString(want[b].TotalMilli+1000), milliString(want[b].TotalMilli))},
			}
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
			want, err := eventsFactsWriteSide(events).RelayedFacts(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if v := verify(eventsFactsWriteSide(events), 0); !v.OK() || v.Generation != 1 || v.Summary.Agree != len(want) || v.FactsCompared != len(want) {
				t.Fatalf("clean read model: %+v, want no drift and the facts of all %d orders agreeing in generation 1", v, len(want))
			}

			late := newOrder(t, events) // past the group's offsets: the daemon is stopped
			produce(t, brokers, topicName, late)
			ws := append(eventsFactsWriteSide(events), late)
			if v := verify(ws, 0); !v.OK() || v.Summary.InFlight != 1 {
				t.Fatalf("order %s in flight: %+v, want no drift and 1 in flight", late.AggregateID, v)
			}

			ids := slices.Sorted(maps.Keys(want))
			a := ids[slices.IndexFunc(ids, func(id string) bool { return want[id].Version >= 2 })]
			b := ids[slices.IndexFunc(ids, func(id string) bool { return id != a })]
			drift := tc.inject(t, ctx, m, a, b, want)
			slices.SortFunc(drift, func(x, y OrderDrift) int { return cmp.Compare(x.OrderID, y.OrderID) })
			eventually(t, time.Minute, "drift of "+a+" and "+b+" reported", func() error {
				if v := verify(ws, 0); !slices.Equal(v.Drift, drift) {
					return fmt.Errorf("drift %+v (summary %s), want exactly %+v", v.Drift, v.Summary, drift)
				}
				return nil
			})

			// The daemons' periodic check exports the same finding.
			reg := prometheus.NewRegistry()
			pv, err := NewPeriodicVerifier(m.p, VerifyConfig{Guard: GuardConfig{Brokers: brokers, Topic: topicName, WriteSide: ws},
				Group: group}, time.Hour, testLog(t), reg)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := pv.Check(ctx); err != nil {
				t.Fatal(err)
			}
			if d, n := metricValue(t, pv.drift), metricValue(t, pv.verified); d != 2 || n != float64(len(ws.orders())) {
				t.Fatalf("periodic check: drift gauge %v, orders counter %v; want 2 and %d", d, n, len(ws.orders()))
			}
			pv.cfg.Guard.WriteSide = failingWriteSide{}
			if _, err := pv.Check(ctx); err == nil || metricValue(t, pv.failures) != 1 || metricValue(t, pv.drift) != 2 {
				t.Fatalf("failed periodic check: err %v, failures %v; want an error counted once, the drift gauge kept",
					err, metricValue(t, pv.failures))
			}

			v := verify(ws, 10)
			if v.Sample != 10 || v.Summary.Orders != 10 || v.Summary.Agree+v.Summary.InFlight+v.Summary.Missing+v.Summary.Stale != 10 {
				t.Fatalf("sample of 10: %+v, want 10 orders compared", v)
			}
		})
	}
}

// metricValue returns the value of a counter or gauge.
func metricValue(t testing.TB, c prometheus.Metric) float64 {
	t.Helper()
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		t.Fatal(err)
	}
	if m.Counter != nil {
		return m.Counter.GetValue()
	}
	return m.Gauge.GetValue()
}

// failingWriteSide cannot be read.
type failingWriteSide struct{}

func (failingWriteSide) RelayedVersions(context.Context) (Versions, error) {
	return nil, errors.New("write side unreachable")
}

// orders returns the orders of w's events.
func (w eventsFactsWriteSide) orders() Versions {
	vs, _ := eventsWriteSide(w).RelayedVersions(context.Background()) // never fails
	return vs
}

// eventsFactsWriteSide is eventsWriteSide with each order's facts: the
// status folded over its events in version order (schemas.Fold), the total
// and line count of its order.placed.
type eventsFactsWriteSide []schemas.Envelope

func (w eventsFactsWriteSide) RelayedVersions(ctx context.Context) (Versions, error) {
	return eventsWriteSide(w).RelayedVersions(ctx)
}

func (w eventsFactsWriteSide) RelayedFacts(context.Context) (map[string]Facts, error) {
	events := slices.Clone(w)
	slices.SortStableFunc(events, func(x, y schemas.Envelope) int {
		return cmp.Or(cmp.Compare(x.AggregateID, y.AggregateID), cmp.Compare(x.AggregateVersion, y.AggregateVersion))
	})
	folds, fs := map[string]schemas.Fold{}, map[string]Facts{}
	for _, e := range events {
		p, err := e.Decode()
		if err != nil {
			return nil, err
		}
		fold, err := folds[e.AggregateID].Apply(p)
		if err != nil {
			return nil, err
		}
		folds[e.AggregateID] = fold
		f := fs[e.AggregateID]
		f.Version, f.Status = e.AggregateVersion, string(fold.Status)
		if placed, ok := p.(*schemas.OrderPlaced); ok {
			f.TotalMilli, f.Lines = placed.Total.Amount.Shift(3).IntPart(), int64(len(placed.Lines))
		}
		fs[e.AggregateID] = f
	}
	return fs, nil
}

// TestVerifyDuringLiveTraffic: while a daemon applies events as they are
// produced, Verify after each batch, against a write side holding every
// event produced so far, reports no drift (orders the daemon has not applied
// yet are in flight), and at the end every order agrees.
func TestVerifyDuringLiveTraffic(t *testing.T) {
	brokers := testenv.KafkaBrokers(t)
	for _, tc := range models {
		t.Run(tc.name, func(t *testing.T) {
			m := tc.model(t)
			events, topicName, group := filledByDaemon(t, brokers, m) // a daemon that has run before
			startDaemon(t, brokers, topicName, group, m.daemon)
			more := testfixture.RealEvents(t)[400:1200]
			produce(t, brokers, topicName, more[:50]...) // the daemon is at work once it applied these
			waitCaughtUp(t, admin(t, brokers), topicName, group, 2*time.Minute)
			ws := slices.Clip(append(events, more[:50]...))
			more = more[50:]
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
			defer cancel()
			var inFlight []int
			for from := 0; from < len(more); from += 50 {
				batch := more[from:min(from+50, len(more))]
				produce(t, brokers, topicName, batch...)
				ws = append(ws, batch...)
				v, err := Verify(ctx, m.p, VerifyConfig{Guard: GuardConfig{Brokers: brokers, Topic: topicName,
					WriteSide: eventsFactsWriteSide(slices.Clip(ws))}, Group: group})
				if err != nil {
					t.Fatal(err)
				}
				if !v.OK() {
					t.Fatalf("after %d live events: drift %+v (summary %s), want none", from+len(batch), v.Drift, v.Summary)
				}
				inFlight = append(inFlight, v.Summary.InFlight)
			}
			t.Logf("orders in flight at each check: %v", inFlight)
			waitCaughtUp(t, admin(t, brokers), topicName, group, 2*time.Minute)
			v, err := Verify(ctx, m.p, VerifyConfig{Guard: GuardConfig{Brokers: brokers, Topic: topicName,
				WriteSide: eventsFactsWriteSide(ws)}, Group: group})
			if err != nil || !v.OK() || v.Summary.Agree != v.Summary.Orders || v.FactsCompared != v.Summary.Orders {
				t.Fatalf("caught up: %+v, %v; want every order agreeing, facts included", v, err)
			}
		})
	}
}
