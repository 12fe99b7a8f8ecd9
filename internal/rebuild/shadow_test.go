package rebuild

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/google/uuid"
	"github.com/orderstream/orderstream/consumers"
	"github.com/orderstream/orderstream/internal/status"
	"github.com/orderstream/orderstream/internal/testenv"
	"github.com/orderstream/orderstream/internal/testfixture"
	"github.com/orderstream/orderstream/projections"
	"github.com/orderstream/orderstream/projections/analytics"
	"github.com/orderstream/orderstream/projections/search"
	"github.com/orderstream/orderstream/schemas"
	"github.com/shopspring/decimal"
)

// model is one read model under test: its adapter, the daemon's sink
// (following every live generation) and the reader's question.
type model struct {
	p projections.ReadModel
	// conn and db reach the analytics model's database directly, search
	// its configuration (tests that alter a generation behind its back).
	conn   driver.Conn
	db     string
	search search.Config
	daemon consumers.Sink
	// answer asks the serving generation the reader's question and returns
	// the answer in a comparable form.
	answer func(ctx context.Context) (string, error)
	// visible makes every write so far visible to answer (search refresh).
	visible func(ctx context.Context) error
	// checkBase verifies the first answer against the real file.
	checkBase func(t testing.TB, answer string)
	// query asks the serving generation of a search model (nil for
	// analytics, whose queries are p.(*analytics.ReadModel).Queries()).
	query *search.Query
}

// models are the read models every rebuild test runs against.
var models = []struct {
	name  string
	model func(testing.TB) model
}{
	{"analytics", analyticsModel},
	{"search", searchModel},
}

func analyticsModel(t testing.TB) model {
	t.Helper()
	cfg := analytics.Config{Addr: testenv.ClickHouseAddr(t), Database: testenv.Name("rebuild"), GenerationRefresh: time.Second}
	p, err := analytics.OpenReadModel(cfg, analytics.WithLogger(testLog(t)))
	if err != nil {
		t.Fatal(err)
	}
	conn, err := analytics.Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := conn.Exec(ctx, "DROP DATABASE IF EXISTS `"+cfg.Database+"`"); err != nil {
			t.Logf("drop database %s: %v", cfg.Database, err)
		}
		_ = conn.Close()
		_ = p.Close()
	})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := p.Store().Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	sink, err := analytics.NewSink(cfg, analytics.WithLogger(testLog(t)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sink.Close() })
	q := p.Queries()
	return model{
		p: p, daemon: sink, conn: conn, db: cfg.Database,
		answer: func(ctx context.Context) (string, error) {
			tot, err := q.Summary(ctx, analytics.Filter{})
			if err != nil {
				return "", err
			}
			b, err := json.Marshal(tot)
			return string(b), err
		},
		visible: func(context.Context) error { return nil },
		checkBase: func(t testing.TB, answer string) {
			var tot analytics.Totals
			if err := json.Unmarshal([]byte(answer), &tot); err != nil {
				t.Fatal(err)
			}
			if want := decimal.RequireFromString("9747747.934"); !tot.NetRevenue.Equal(want) {
				t.Fatalf("net revenue before the rebuild = %s, want %s", tot.NetRevenue, want)
			}
		},
	}
}

func searchModel(t testing.TB) model {
	t.Helper()
	eng, err := search.NewEngine(search.EngineConfig{Kind: search.EngineOpenSearch, URL: testenv.SearchURL(t)})
	if err != nil {
		t.Fatal(err)
	}
	cfg := search.Config{Engine: eng, Prefix: testenv.Name("rebuild")}
	p, err := search.NewReadModel(cfg, search.WithLogger(testLog(t)))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := p.Admin().Setup(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := p.Admin().DropAll(ctx); err != nil {
			t.Logf("drop search read model %s: %v", cfg.Prefix, err)
		}
	})
	sink, err := search.NewSink(search.SinkConfig{Config: cfg}, search.WithLogger(testLog(t)))
	if err != nil {
		t.Fatal(err)
	}
	q, err := search.NewQuery(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return model{
		p: p, daemon: sink, search: cfg, query: q,
		answer: func(ctx context.Context) (string, error) {
			res, err := q.Search(ctx, search.Request{Size: 1})
			if err != nil {
				return "", err
			}
			b, err := json.Marshal(struct {
				Total  int64
				Facets search.Facets
			}{res.Total, res.Facets})
			return string(b), err
		},
		visible: p.Admin().Refresh,
		checkBase: func(t testing.TB, answer string) {
			var a struct{ Total int64 }
			if err := json.Unmarshal([]byte(answer), &a); err != nil {
				t.Fatal(err)
			}
			if a.Total != 25900 {
				t.Fatalf("orders before the rebuild = %d, want 25900 (one per document)", a.Total)
			}
		},
	}
}

// TestShadowRebuild rebuilds each read model from offset zero over the real
// file's events while its daemon runs and a reader asks the same question in
// a loop: the reader never sees an error or an answer that differs from the
// one before the rebuild; after the cutover the answer is the same, the
// daemon writes new events to the new generation without a restart, and a
// rollback serves the previous generation, kept current by the daemon.
func TestShadowRebuild(t *testing.T) {
	brokers := testenv.KafkaBrokers(t)
	events := testfixture.RealEvents(t)
	for _, tc := range models {
		t.Run(tc.name, func(t *testing.T) {
			// A topic of its own: the test adds an order to it.
			topic := testfixture.ProduceTopic(t, brokers, events)
			m := tc.model(t)
			testShadow(t, m, brokers, topic, events)
		})
	}
}

func testShadow(t *testing.T, m model, brokers []string, topic string, events []schemas.Envelope) {
	adm := admin(t, brokers)
	daemonGroup := testenv.Name("daemon")
	startDaemon(t, brokers, topic, daemonGroup, m.daemon)
	waitCaughtUp(t, adm, topic, daemonGroup, 5*time.Minute)

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	if err := m.visible(ctx); err != nil {
		t.Fatal(err)
	}
	base, err := m.answer(ctx)
	if err != nil {
		t.Fatal(err)
	}
	m.checkBase(t, base)

	// The reader: same question in a loop for the whole rebuild.
	var (
		mu        sync.Mutex
		queries   int
		failures  []string
		readerEnd = make(chan struct{})
		readerWG  sync.WaitGroup
	)
	readerWG.Add(1)
	go func() {
		defer readerWG.Done()
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-readerEnd:
				return
			case <-tick.C:
			}
			got, err := m.answer(ctx)
			mu.Lock()
			queries++
			switch {
			case err != nil:
				failures = append(failures, fmt.Sprintf("query %d: error %v", queries, err))
			case got != base:
				failures = append(failures, fmt.Sprintf("query %d: answer %s, want %s", queries, got, base))
			}
			mu.Unlock()
		}
	}()

	var phases []string
	res, err := Shadow(ctx, m.p, ShadowConfig{
		Brokers: brokers, Topic: topic, Group: testenv.Name("rebuild"), Settle: 3 * time.Second, ProgressInterval: 500 * time.Millisecond,
		WriteSide: eventsWriteSide(events),
		Progress: func(p Progress) {
			if len(phases) == 0 || phases[len(phases)-1] != p.Phase {
				phases = append(phases, p.Phase)
				t.Logf("%s generation %d: %s at %s, %d/%d events, %.0f events/s", p.Projection, p.Generation, p.Phase,
					p.Elapsed.Round(time.Millisecond), p.Processed, p.Total, p.Rate)
			}
		},
	}, testLog(t))
	// Keep reading a little after the cutover: still the same answer.
	if err == nil {
		_ = m.visible(ctx)
		afterCutover := queriesNow(&mu, &queries) + 10
		eventually(t, time.Minute, "10 more queries after the cutover", func() error {
			if n := queriesNow(&mu, &queries); n < afterCutover {
				return fmt.Errorf("%d queries", n)
			}
			return nil
		})
	}
	close(readerEnd)
	readerWG.Wait()
	if err != nil {
		t.Fatalf("shadow rebuild: %v", err)
	}
	t.Logf("%s: generation %d rebuilt from offset zero: %d events in %s (%.0f events/s); reader asked %d times; phases %v",
		res.Projection, res.Generation, res.Events, res.Duration.Round(time.Millisecond), res.Rate(), queries, phases)
	if len(failures) > 0 {
		t.Fatalf("the reader saw %d bad answer(s) during the rebuild, e.g. %s", len(failures), failures[0])
	}
	if queries < 10 {
		t.Fatalf("the reader asked only %d times during the rebuild", queries)
	}
	if res.Generation != 2 || res.Previous != 1 || res.Events != int64(len(events)) {
		t.Fatalf("result = %+v, want generation 2, previous 1, %d events", res, len(events))
	}
	gens, err := m.p.Generations(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if projections.Serving(gens) != 2 {
		t.Fatalf("generations after the rebuild = %v, want 2 serving", gens)
	}
	if got, err := m.answer(ctx); err != nil || got != base {
		t.Fatalf("answer after the cutover = %s, %v; want %s", got, err, base)
	}
	if g, err := consumers.InspectGroup(ctx, adm, topic, res.Group); err != nil || g.Exists() {
		t.Fatalf("rebuild group %s after the rebuild: exists %v, err %v", res.Group, g.Exists(), err)
	}

	// The daemon follows the cutover: a new order reaches generation 2.
	produce(t, brokers, topic, newOrder(t, events))
	var withNew string
	eventually(t, time.Minute, "the new order in the serving generation", func() error {
		if err := m.visible(ctx); err != nil {
			return err
		}
		got, err := m.answer(ctx)
		if err != nil {
			return err
		}
		if got == base {
			return errors.New("answer unchanged")
		}
		withNew = got
		return nil
	})

	// Rollback: generation 1 serves again, kept current by the daemon.
	n, err := m.p.Rollback(ctx)
	if err != nil || n != 1 {
		t.Fatalf("rollback = %d, %v; want 1", n, err)
	}
	gens, err = m.p.Generations(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if projections.Serving(gens) != 1 {
		t.Fatalf("generations after the rollback = %v, want 1 serving", gens)
	}
	eventually(t, time.Minute, "the answer after the rollback equals the one before it", func() error {
		if err := m.visible(ctx); err != nil {
			return err
		}
		got, err := m.answer(ctx)
		if err != nil {
			return err
		}
		if got != withNew {
			return fmt.Errorf("answer %s, want %s", got, withNew)
		}
		return nil
	})
}

func queriesNow(mu *sync.Mutex, n *int) int {
	mu.Lock()
	defer mu.Unlock()
	return *n
}

// TestShadowStrict: a poison record in the topic stops the rebuild with its
// partition and offset named; the new generation is dropped and the serving
// one is untouched.
func TestShadowStrict(t *testing.T) {
	brokers := testenv.KafkaBrokers(t)
	events := testfixture.RealEvents(t)[:500]
	topic := testfixture.ProduceTopic(t, brokers, events)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	poison := produceRaw(t, brokers, topic, "poison-order", []byte(`{"event_type": "order.placed", not json`))
	produce(t, brokers, topic, events[500-10:]...) // valid events after it

	m := analyticsModel(t)
	base, err := m.answer(ctx)
	if err != nil {
		t.Fatal(err)
	}
	group := testenv.Name("rebuild")
	_, err = Shadow(ctx, m.p, ShadowConfig{Brokers: brokers, Topic: topic, Group: group, Settle: time.Second, ProgressInterval: 200 * time.Millisecond,
		WriteSide: eventsWriteSide(events)}, testLog(t))
	se, ok := strictError(err)
	if !ok {
		t.Fatalf("Shadow error = %v, want a strict-mode error", err)
	}
	if se.Partition != poison.Partition || se.Offset != poison.Offset {
		t.Fatalf("strict error names partition %d offset %d, want the poison at %d/%d (%v)", se.Partition, se.Offset, poison.Partition, poison.Offset, err)
	}
	t.Logf("rebuild stopped: %v", err)
	gens, err := m.p.Generations(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(gens) != 1 || projections.Serving(gens) != 1 {
		t.Fatalf("generations after the failed rebuild = %v, want only 1, serving", gens)
	}
	if got, err := m.answer(ctx); err != nil || got != base {
		t.Fatalf("answer after the failed rebuild = %s, %v; want %s", got, err, base)
	}
	if g, err := consumers.InspectGroup(ctx, admin(t, brokers), topic, group); err != nil || g.Exists() {
		t.Fatalf("rebuild group after the failure: exists %v, err %v", g.Exists(), err)
	}
}

// TestShadowSkipDeadLettered: an order.placed of a schema version newer than
// the binary reads, dead-lettered by the daemon's runtime (before any sink
// sees it) with the order.paid parked behind it, stops
// every rebuild and the error names the daemon's group; with
// SkipDeadLettered the rebuild skips both, lists them, and cuts over to a
// generation that answers as the serving one.
func TestShadowSkipDeadLettered(t *testing.T) {
	brokers := testenv.KafkaBrokers(t)
	events := testfixture.RealEvents(t)[:300]
	topic := testfixture.ProduceTopic(t, brokers, events)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()

	placed := newOrder(t, events)
	placed.SchemaVersion = schemas.CurrentVersion + 1 // written by a newer binary
	value, err := json.Marshal(placed)
	if err != nil {
		t.Fatal(err)
	}
	poison := produceRaw(t, brokers, topic, placed.AggregateID, value)
	var paid schemas.Envelope
	for _, e := range events {
		if e.EventType == schemas.TypeOrderPaid {
			paid = e
			break
		}
	}
	paid.AggregateID, paid.EventID, paid.AggregateVersion = placed.AggregateID, uuid.Must(uuid.NewV7()), 2
	produce(t, brokers, topic, paid)
	valid := newOrder(t, events[100:]) // a valid order after them
	produce(t, brokers, topic, valid)

	m := analyticsModel(t)
	adm := admin(t, brokers)
	daemonGroup := testenv.Name("daemon")
	startDaemonOf(t, brokers, topic, daemonGroup, m.p.Name(), m.daemon)
	waitCaughtUp(t, adm, topic, daemonGroup, 2*time.Minute)
	if n, err := status.CountDLQ(ctx, adm, brokers, topic+".dlq"); err != nil || n.ByGroup[daemonGroup] != 2 {
		t.Fatalf("dead letters of the daemon = %+v, %v; want the order.placed and the order.paid parked behind it", n, err)
	}
	base, err := m.answer(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// The write side holds every order; the dead-lettered one is judged by
	// its re-drive, not by the cutover checks.
	ws := eventsWriteSide(append(slices.Clone(events), placed, paid, valid))
	cfg := ShadowConfig{Brokers: brokers, Topic: topic, Group: testenv.Name("rebuild"), Settle: time.Second, ProgressInterval: 200 * time.Millisecond,
		WriteSide: ws}
	_, err = Shadow(ctx, m.p, cfg, testLog(t))
	if se, ok := strictError(err); !ok || se.Offset != poison.Offset || se.Partition != poison.Partition || se.DeadLetteredBy != daemonGroup {
		t.Fatalf("rebuild without skipping: %v; want a strict error at %d/%d naming group %s", err, poison.Partition, poison.Offset, daemonGroup)
	}

	cfg.Group, cfg.SkipDeadLettered = testenv.Name("rebuild"), true
	res, err := Shadow(ctx, m.p, cfg, testLog(t))
	if err != nil {
		t.Fatalf("rebuild skipping dead letters: %v", err)
	}
	if len(res.Skipped) != 2 || res.Skipped[0].SourceOffset != poison.Offset || res.Skipped[0].Kind != consumers.KindDecode ||
		!strings.Contains(res.Skipped[0].Error, schemas.ErrNewerVersion.Error()) ||
		res.Skipped[1].EventID != paid.EventID.String() || res.Skipped[1].Kind != consumers.KindParked {
		t.Fatalf("skipped = %+v, want the order.placed (newer version) then the order.paid (parked)", res.Skipped)
	}
	if got, err := m.answer(ctx); err != nil || got != base {
		t.Fatalf("answer of the rebuilt generation = %s, %v; want %s as before", got, err, base)
	}
}
