package rebuild

import (
	"context"
	"encoding/json"
	"os"
	"sort"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/orderstream/orderstream/consumers"
	"github.com/orderstream/orderstream/internal/status"
	"github.com/orderstream/orderstream/internal/testenv"
	"github.com/orderstream/orderstream/internal/testfixture"
	"github.com/orderstream/orderstream/producer/command"
	"github.com/orderstream/orderstream/producer/csvimport"
	"github.com/orderstream/orderstream/producer/store"
	"github.com/orderstream/orderstream/projections/analytics"
	"github.com/orderstream/orderstream/projections/search"
	"github.com/orderstream/orderstream/schemas"
)

// evolveSampleRows is how many rows of the real file the schema-evolution
// test imports: the first 30,000, which are 1,406 documents (1,198 sales,
// 208 credit notes; the file's adjustments come later) of 19 countries —
// every figure non-trivial, and small enough to import twice in seconds.
const evolveSampleRows = 30_000

// writeThrough imports docs through the write side into a database of its
// own — the first v1Docs documents by a writer with --event-version 1, the
// rest with version 2 — then ships the sales numbered ship with version
// shipVersion (an order placed and paid as v1, shipped as v2), and returns
// the outbox's events in commit order, as the relay publishes them.
func writeThrough(t *testing.T, docs []csvimport.Document, v1Docs int, ship []string, shipVersion int) []schemas.Envelope {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	pcfg, err := pgxpool.ParseConfig(testenv.NewDatabase(t))
	if err != nil {
		t.Fatal(err)
	}
	pcfg.ConnConfig.RuntimeParams["synchronous_commit"] = "off" // as import --async-commit: a throwaway database
	pool, err := pgxpool.NewWithConfig(ctx, pcfg)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	if _, err := store.Migrate(ctx, pool, testLog(t)); err != nil {
		t.Fatal(err)
	}
	v, err := schemas.NewValidator()
	if err != nil {
		t.Fatal(err)
	}
	for _, part := range []struct {
		docs    []csvimport.Document
		version int
	}{{docs[:v1Docs], 1}, {docs[v1Docs:], 2}} {
		if len(part.docs) == 0 {
			continue
		}
		im, err := csvimport.New(csvimport.Config{Workers: 8}, command.NewHandler(store.NewRepository(pool, v, store.WithEventVersion(part.version)), store.IsConflict), csvimport.WithLogger(testLog(t)))
		if err != nil {
			t.Fatal(err)
		}
		sum, err := im.Import(ctx, part.docs)
		if err != nil || sum.Imported != len(part.docs) {
			t.Fatalf("import of %d documents as v%d: %+v, %v", len(part.docs), part.version, sum, err)
		}
	}
	repo := store.NewRepository(pool, v, store.WithEventVersion(shipVersion))
	for _, number := range ship {
		o, err := repo.Load(ctx, csvimport.OrderID(number))
		if err != nil {
			t.Fatal(err)
		}
		if err := o.Ship(o.State().PlacedAt.Add(24*time.Hour), "DHL", "1Z"+number); err != nil {
			t.Fatal(err)
		}
		if err := repo.Save(ctx, o, schemas.Metadata{}); err != nil {
			t.Fatal(err)
		}
	}
	rows, err := pool.Query(ctx, `SELECT envelope::text FROM outbox ORDER BY id`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []schemas.Envelope
	for rows.Next() {
		var b string
		if err := rows.Scan(&b); err != nil {
			t.Fatal(err)
		}
		e, err := schemas.ParseEnvelope([]byte(b))
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// versionsOf counts events by schema version.
func schemaVersionsOf(events []schemas.Envelope) map[int]int {
	n := map[int]int{}
	for _, e := range events {
		n[e.SchemaVersion]++
	}
	return n
}

// TestReplayMixedVersions: a topic holding a sample of the real file's
// events as v1 for the first half of the documents and as v2 for the rest
// (written through the write side, --event-version 1 then 2), with some
// orders placed and paid as v1 and shipped as v2, is replayed from offset
// zero into a new generation of each read model (strict: one event a
// consumer could not read stops it). Every figure equals the generation
// built from the same documents written all as v1, and the CSV oracle.
func TestReplayMixedVersions(t *testing.T) {
	brokers := testenv.KafkaBrokers(t)
	path := testfixture.SampleFile(t, evolveSampleRows)
	exp, err := testfixture.ComputeExpected(path)
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	docs, _, err := csvimport.Collect(f)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	var ship []string // the first sales of the v1 half
	for _, d := range docs[:len(docs)/2] {
		if d.Kind == schemas.KindSale && len(ship) < 20 {
			ship = append(ship, d.Number)
		}
	}
	start := time.Now()
	mixed := writeThrough(t, docs, len(docs)/2, ship, 2)
	allV1 := writeThrough(t, docs, len(docs), ship, 1)
	t.Logf("%d documents (%v by kind, %d countries) written twice through the write side in %s", len(docs), exp.Total.ByKind, len(exp.ByCountry), time.Since(start).Round(time.Millisecond))
	if got := schemaVersionsOf(allV1); got[2] != 0 || got[1] != exp.Events+len(ship) {
		t.Fatalf("all-v1 write side: events by version %v, want %d of v1", got, exp.Events+len(ship))
	}
	if got := schemaVersionsOf(mixed); got[1] == 0 || got[2] == 0 || got[1]+got[2] != exp.Events+len(ship) {
		t.Fatalf("mixed write side: events by version %v, want both, %d in all", got, exp.Events+len(ship))
	}
	v1Topic := testfixture.ProduceTopic(t, brokers, allV1)
	mixedTopic := testfixture.ProduceTopic(t, brokers, mixed)
	t.Logf("topics produced after %s", time.Since(start).Round(time.Millisecond))

	for _, tc := range models {
		t.Run(tc.name, func(t *testing.T) {
			m := tc.model(t)
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
			defer cancel()
			group := testenv.Name("daemon")
			stop := startDaemon(t, brokers, v1Topic, group, m.daemon)
			waitCaughtUp(t, admin(t, brokers), v1Topic, group, 2*time.Minute)
			stop()
			if err := m.visible(ctx); err != nil {
				t.Fatal(err)
			}
			v1 := figures(ctx, t, m, exp, len(ship))
			t.Logf("all-v1 generation built and checked after %s", time.Since(start).Round(time.Millisecond))

			res, err := Shadow(ctx, m.p, ShadowConfig{Brokers: brokers, Topic: mixedTopic, Group: testenv.Name("rebuild"),
				Settle: time.Second, WriteSide: eventsWriteSide(mixed)}, testLog(t))
			if err != nil || res.Generation != 2 || res.Events != int64(len(mixed)) {
				t.Fatalf("replay of the mixed topic: %+v, %v; want generation 2 serving after %d events", res, err, len(mixed))
			}
			if err := m.visible(ctx); err != nil {
				t.Fatal(err)
			}
			if got := figures(ctx, t, m, exp, len(ship)); got != v1 {
				t.Fatalf("figures of the mixed v1/v2 replay differ from the all-v1 build:\n got %s\nwant %s", got, v1)
			}

			// A daemon of the previous release (reading up to v1) on the
			// mixed topic, into a read model of its own: every v2 event is
			// dead-lettered (the first of each order as newer than it
			// reads, the rest of the order parked behind it), none applied,
			// none lost; after the upgrade the re-drive applies them and
			// every figure is exact again.
			old := tc.model(t)
			oldGroup := testenv.Name("old")
			stopOld := startDaemonOf(t, brokers, mixedTopic, oldGroup, old.p.Name(), old.daemon, consumers.WithUpcasters(schemas.NewUpcasters().ReadingUpTo(1)))
			waitCaughtUp(t, admin(t, brokers), mixedTopic, oldGroup, 2*time.Minute)
			stopOld()
			dead, err := status.CountDLQ(ctx, admin(t, brokers), brokers, mixedTopic+".dlq")
			if err != nil || dead.ByGroup[oldGroup] != int64(schemaVersionsOf(mixed)[2]) {
				t.Fatalf("dead letters of the old daemon = %+v, %v; want the %d v2 events", dead, err, schemaVersionsOf(mixed)[2])
			}
			rd, err := consumers.Redrive(ctx, consumers.RedriveConfig{Brokers: brokers, DLQTopic: mixedTopic + ".dlq", Group: oldGroup}, old.daemon, testLog(t))
			if err != nil || len(rd.Stuck) != 0 || int64(len(rd.Applied)) != dead.ByGroup[oldGroup] {
				t.Fatalf("re-drive after the upgrade: %d applied, stuck %v, %v; want %d applied", len(rd.Applied), rd.Stuck, err, dead.ByGroup[oldGroup])
			}
			if err := old.visible(ctx); err != nil {
				t.Fatal(err)
			}
			if got := figures(ctx, t, old, exp, len(ship)); got != v1 {
				t.Fatalf("figures after the re-drive differ from the all-v1 build:\n got %s\nwant %s", got, v1)
			}
		})
	}
}

// figures asks the serving generation of m every figure the test compares,
// checks them against the CSV oracle and returns them as JSON.
func figures(ctx context.Context, t *testing.T, m model, exp *testfixture.Expected, shipped int) string {
	t.Helper()
	var all any
	if a, ok := m.p.(*analytics.ReadModel); ok {
		all = analyticsFigures(ctx, t, a.Queries(), exp)
	} else {
		all = searchFigures(ctx, t, m.query, exp, shipped)
	}
	b, err := json.Marshal(all)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func analyticsFigures(ctx context.Context, t *testing.T, q *analytics.Queries, exp *testfixture.Expected) any {
	t.Helper()
	sum, err := q.Summary(ctx, analytics.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	byCountry, err := q.Breakdown(ctx, analytics.Filter{}, analytics.ByCountry)
	if err != nil {
		t.Fatal(err)
	}
	check := func(what string, got analytics.Totals, want *testfixture.Bucket) {
		if want == nil || !got.NetRevenue.Equal(want.Net) || !got.GrossSales.Equal(want.Gross) || !got.Returns.Equal(want.Returns) ||
			!got.Adjustments.Equal(want.Adjust) || got.Orders != int64(want.Orders) || got.CreditNotes != int64(want.ByKind[schemas.KindCreditNote]) ||
			got.Customers != int64(want.Customers) || got.Lines != int64(want.Lines) {
			t.Errorf("%s: read model %+v, CSV oracle %+v", what, got, want)
		}
	}
	check("total", sum, &exp.Total)
	if len(byCountry) != len(exp.ByCountry) {
		t.Errorf("%d countries, CSV oracle %d", len(byCountry), len(exp.ByCountry))
	}
	for _, g := range byCountry {
		check("country "+g.Key, g.Totals, exp.ByCountry[g.Key])
	}
	// No document of the file says its channel, and v1 events cannot: every
	// order is unknown.
	byChannel, err := q.Breakdown(ctx, analytics.Filter{}, analytics.ByChannel)
	if err != nil {
		t.Fatal(err)
	}
	if len(byChannel) != 1 || byChannel[0].Key != schemas.ChannelUnknown {
		t.Errorf("channels %+v, want unknown only", byChannel)
	} else {
		check("channel unknown", byChannel[0].Totals, &exp.Total)
	}
	return struct {
		Summary   analytics.Totals
		ByCountry []analytics.Group
		ByChannel []analytics.Group
	}{sum, byCountry, byChannel}
}

func searchFigures(ctx context.Context, t *testing.T, q *search.Query, exp *testfixture.Expected, shipped int) any {
	t.Helper()
	res, err := q.Search(ctx, search.Request{Size: 1})
	if err != nil {
		t.Fatal(err)
	}
	if res.Total != int64(exp.Total.Documents) {
		t.Errorf("orders %d, CSV oracle %d", res.Total, exp.Total.Documents)
	}
	for _, b := range res.Facets.Kind {
		if b.Count != int64(exp.Total.ByKind[schemas.Kind(b.Key)]) {
			t.Errorf("kind %s: %d orders, CSV oracle %d", b.Key, b.Count, exp.Total.ByKind[schemas.Kind(b.Key)])
		}
	}
	if len(res.Facets.Country) != len(exp.DocumentsByCountryKind) {
		t.Errorf("%d countries, CSV oracle %d", len(res.Facets.Country), len(exp.DocumentsByCountryKind))
	}
	for _, b := range res.Facets.Country {
		want := 0
		for _, n := range exp.DocumentsByCountryKind[b.Key] {
			want += n
		}
		if b.Count != int64(want) {
			t.Errorf("country %s: %d orders, CSV oracle %d", b.Key, b.Count, want)
		}
	}
	if len(res.Facets.Channel) != 1 || res.Facets.Channel[0] != (search.Bucket{Key: schemas.ChannelUnknown, Count: int64(exp.Total.Documents)}) {
		t.Errorf("channel facet %+v, want every one of %d orders unknown", res.Facets.Channel, exp.Total.Documents)
	}
	for _, b := range res.Facets.Status {
		if b.Key == string(schemas.StatusShipped) && b.Count != int64(shipped) {
			t.Errorf("%d orders shipped, want %d", b.Count, shipped)
		}
	}
	// The buyers with most documents: each one's orders, found by customer id.
	perCustomer := map[string]int{}
	for _, d := range exp.Docs {
		if d.CustomerID != "" {
			perCustomer[d.CustomerID]++
		}
	}
	ids := make([]string, 0, len(perCustomer))
	for id := range perCustomer {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool {
		if perCustomer[ids[i]] != perCustomer[ids[j]] {
			return perCustomer[ids[i]] > perCustomer[ids[j]]
		}
		return ids[i] < ids[j]
	})
	customers := map[string]int64{}
	for _, id := range ids[:min(5, len(ids))] {
		r, err := q.Search(ctx, search.Request{Customer: id, Size: 1})
		if err != nil {
			t.Fatal(err)
		}
		if r.Total != int64(perCustomer[id]) {
			t.Errorf("customer %s: %d orders, CSV oracle %d", id, r.Total, perCustomer[id])
		}
		customers[id] = r.Total
	}
	return struct {
		Total     int64
		Facets    search.Facets
		Customers map[string]int64
	}{res.Total, res.Facets, customers}
}
