package rebuild

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/orderstream/orderstream/consumers"
	"github.com/orderstream/orderstream/internal/testenv"
	"github.com/orderstream/orderstream/internal/tracing"
	"github.com/orderstream/orderstream/producer/command"
	"github.com/orderstream/orderstream/producer/csvimport"
	"github.com/orderstream/orderstream/producer/relay"
	"github.com/orderstream/orderstream/producer/store"
	"github.com/orderstream/orderstream/producer/topic"
	"github.com/orderstream/orderstream/projections"
	"github.com/orderstream/orderstream/schemas"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
)

// TestTraceChain follows one order from its import through the outbox, the
// relay and Kafka to both read models, with every span in an in-memory
// exporter: the import's span is the parent of one relay "send" span per
// event (whose context the outbox row stored), each daemon's batch span
// links to every event's send span with the record's partition, offset and
// order id, and the batch span is the parent of the read model's write
// (ClickHouse insert, bulk request) into the serving generation and of the
// offset commit.
func TestTraceChain(t *testing.T) {
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp), sdktrace.WithSampler(sdktrace.AlwaysSample()),
		sdktrace.WithSpanLimits(tracing.Limits(os.Getenv)))
	otel.SetTracerProvider(tp)
	t.Cleanup(func() { otel.SetTracerProvider(noop.NewTracerProvider()) })

	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	type daemon struct {
		m     model
		write string // name prefix of the read model's write span
	}
	daemons := []daemon{{analyticsModel(t), "clickhouse insert"}, {searchModel(t), "bulk "}}
	pl := startPipeline(t, daemons[0].m, daemons[1].m)
	pool, topicName := pl.pool, pl.topic

	// One sale: order.placed and order.paid in one transaction.
	docs, _, err := csvimport.Collect(strings.NewReader("InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country\n" +
		"536365,85123A,WHITE HANGING HEART T-LIGHT HOLDER,6,2010-12-01 08:26:00,2.55,17850,United Kingdom\n" +
		"536365,71053,WHITE METAL LANTERN,6,2010-12-01 08:26:00,3.39,17850,United Kingdom\n"))
	if err != nil {
		t.Fatal(err)
	}
	v, err := schemas.NewValidator()
	if err != nil {
		t.Fatal(err)
	}
	im, err := csvimport.New(csvimport.Config{Workers: 1}, command.NewHandler(store.NewRepository(pool, v), store.IsConflict), csvimport.WithLogger(testLog(t)))
	if err != nil {
		t.Fatal(err)
	}
	if sum, err := im.Import(ctx, docs); err != nil || sum.Imported != 1 {
		t.Fatalf("import: %+v, %v; want one document imported", sum, err)
	}

	// The spans of the chain, once both daemons committed the events.
	var (
		imp      sdktrace.ReadOnlySpan
		sends    []sdktrace.ReadOnlySpan
		batches  = map[string]sdktrace.ReadOnlySpan{}
		children = map[trace.SpanID][]sdktrace.ReadOnlySpan{}
	)
	eventually(t, 2*time.Minute, "spans of import, relay and both daemons", func() error {
		imp, sends, batches, children = nil, nil, map[string]sdktrace.ReadOnlySpan{}, map[trace.SpanID][]sdktrace.ReadOnlySpan{}
		for _, s := range exp.GetSpans().Snapshots() {
			switch {
			case s.Name() == "import document" && attr(s, tracing.KeyOrderNumber) == "536365":
				imp = s
			case s.Name() == "send "+topicName:
				sends = append(sends, s)
			case s.Name() == "process "+topicName && len(s.Links()) > 0:
				batches[attr(s, tracing.KeyConsumerGroup)] = s
			}
			children[s.Parent().SpanID()] = append(children[s.Parent().SpanID()], s)
		}
		if imp == nil || len(sends) != 2 || len(batches) != 2 {
			return fmt.Errorf("import span %v, %d send spans, batch spans of %d groups; want 1, 2, 2", imp != nil, len(sends), len(batches))
		}
		for _, b := range batches {
			if len(children[b.SpanContext().SpanID()]) < 2 {
				return fmt.Errorf("batch span of %s has %d children; want the write and the commit", attr(b, tracing.KeyConsumerGroup), len(children[b.SpanContext().SpanID()]))
			}
		}
		return nil
	})

	orderID := attr(imp, tracing.KeyOrderID)
	if orderID == "" || imp.Parent().IsValid() {
		t.Fatalf("import span: order id %q, parent %v; want the order's id on a root span", orderID, imp.Parent())
	}
	// The import places the order through the application service, whose
	// command span is the import span's child and the context the events
	// carry.
	var place sdktrace.ReadOnlySpan
	for _, c := range children[imp.SpanContext().SpanID()] {
		if c.Name() == "order.place" {
			place = c
		}
	}
	if place == nil || attr(place, tracing.KeyOrderID) != orderID {
		t.Fatalf("children of the import span %v: want an order.place span of order %s", spanNames(children[imp.SpanContext().SpanID()]), orderID)
	}
	var stored []string
	rows, err := pool.Query(ctx, `SELECT coalesce(traceparent, '') FROM outbox WHERE aggregate_id = $1 ORDER BY aggregate_version`, orderID)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var tp string
		if err := rows.Scan(&tp); err != nil {
			t.Fatal(err)
		}
		stored = append(stored, tp)
	}
	if rows.Err() != nil {
		t.Fatal(rows.Err())
	}
	want := fmt.Sprintf("00-%s-%s-01", place.SpanContext().TraceID(), place.SpanContext().SpanID())
	if len(stored) != 2 || stored[0] != want || stored[1] != want {
		t.Errorf("outbox traceparent of order %s = %q, want the command span's %q on both events", orderID, stored, want)
	}

	sent := map[trace.SpanID]sdktrace.ReadOnlySpan{}
	for _, s := range sends {
		sent[s.SpanContext().SpanID()] = s
		if s.Parent().SpanID() != place.SpanContext().SpanID() || s.SpanContext().TraceID() != imp.SpanContext().TraceID() || s.SpanKind() != trace.SpanKindProducer {
			t.Errorf("send span %s: parent %s, kind %s; want a producer span, child of the command span %s", s.SpanContext().SpanID(), s.Parent().SpanID(), s.SpanKind(), place.SpanContext().SpanID())
		}
		if attr(s, tracing.KeyOrderID) != orderID || attr(s, tracing.KeyDestination) != topicName || attr(s, tracing.KeyPartition) == "" || attr(s, tracing.KeyOffset) == "" {
			t.Errorf("send span attributes %v: want order id %s, topic %s, partition and offset", s.Attributes(), orderID, topicName)
		}
	}
	for i, d := range daemons {
		group := pl.groups[i]
		b, ok := batches[group]
		if !ok {
			t.Fatalf("no batch span of group %s", group)
		}
		linked := 0
		for _, l := range b.Links() {
			s, ok := sent[l.SpanContext.SpanID()]
			if !ok {
				continue
			}
			linked++
			la := attribute.NewSet(l.Attributes...)
			p, _ := la.Value(tracing.KeyPartition)
			o, _ := la.Value(tracing.KeyOffset)
			k, _ := la.Value(tracing.KeyMessageKey)
			if p.Emit() != attr(s, tracing.KeyPartition) || o.Emit() != attr(s, tracing.KeyOffset) || k.Emit() != orderID || l.SpanContext.TraceID() != imp.SpanContext().TraceID() {
				t.Errorf("%s: link %v to send span %v: want its partition, offset and order id %s", group, l.Attributes, s.Attributes(), orderID)
			}
		}
		if linked != 2 {
			t.Errorf("%s: batch span links %d of the 2 send spans, want both", group, linked)
		}
		if b.Parent().IsValid() || b.SpanKind() != trace.SpanKindConsumer || attr(b, tracing.KeyDestination) != topicName {
			t.Errorf("%s: batch span parent %v, kind %s, attributes %v; want a consumer root span of topic %s", group, b.Parent(), b.SpanKind(), b.Attributes(), topicName)
		}
		serving := servingGeneration(t, ctx, d.m.p)
		var write, commit bool
		for _, c := range children[b.SpanContext().SpanID()] {
			switch {
			case strings.HasPrefix(c.Name(), d.write):
				write = attr(c, tracing.KeyGeneration) == strconv.Itoa(int(serving))
				if !write {
					t.Errorf("%s: write span %q generation %q, want the serving %d", group, c.Name(), attr(c, tracing.KeyGeneration), serving)
				}
			case c.Name() == "commit":
				commit = true
			}
		}
		if !write || !commit {
			t.Errorf("%s: batch span's children: write %v, commit %v; want both", group, write, commit)
		}
	}
}

// pipeline is a write side (a fresh database, migrated), its relay to a
// fresh topic and one daemon per read model, all running.
type pipeline struct {
	pool   *pgxpool.Pool
	topic  string
	groups []string // of the daemons, in the order of the models
	stop   func()   // stops the daemons and the relay (also at cleanup)
}

func startPipeline(tb testing.TB, models ...model) *pipeline {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	brokers := testenv.KafkaBrokers(tb)
	pgURL := testenv.NewDatabase(tb)
	pool, err := pgxpool.New(ctx, pgURL)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(pool.Close)
	if _, err := store.Migrate(ctx, pool, slog.New(slog.NewTextHandler(io.Discard, nil))); err != nil {
		tb.Fatal(err)
	}
	pl := &pipeline{pool: pool, topic: testenv.Name("trace")}
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_, _ = admin(tb, brokers).DeleteTopics(ctx, pl.topic)
	})
	r, err := relay.New(relay.Config{PostgresURL: pgURL, Brokers: brokers, Topic: pl.topic, Slot: testenv.Name("slot"),
		Heartbeat: 500 * time.Millisecond, OutboxRetention: -1, CreateTopic: true, TopicSpec: topic.Spec{Partitions: 3}},
		relay.WithLogger(testLog(tb)))
	if err != nil {
		tb.Fatal(err)
	}
	rctx, stopRelay := context.WithCancel(context.Background())
	relayDone := make(chan error, 1)
	go func() { relayDone <- r.Run(rctx) }()
	var stops []func()
	for _, m := range models {
		group := testenv.Name("trace_" + m.p.Name())
		pl.groups = append(pl.groups, group)
		stops = append(stops, startDaemonOf(tb, brokers, pl.topic, group, m.p.Name(), m.daemon))
	}
	// Ready: the relay streams and every daemon holds partitions.
	adm := admin(tb, brokers)
	eventually(tb, time.Minute, "relay streaming and daemons assigned", func() error {
		if st := r.State(); st != relay.StateStreaming {
			return fmt.Errorf("relay %s", st)
		}
		for _, group := range pl.groups {
			g, err := consumers.InspectGroup(ctx, adm, pl.topic, group)
			if err != nil || len(g.Members) == 0 {
				return fmt.Errorf("group %s: %d members, %v", group, len(g.Members), err)
			}
		}
		return nil
	})
	var once sync.Once
	pl.stop = func() {
		once.Do(func() {
			for _, s := range stops {
				s()
			}
			stopRelay()
			<-relayDone
		})
	}
	tb.Cleanup(pl.stop)
	return pl
}

// attr returns the value of attribute k of s as text, "" when absent.
func attr(s sdktrace.ReadOnlySpan, k attribute.Key) string {
	for _, a := range s.Attributes() {
		if a.Key == k {
			return a.Value.Emit()
		}
	}
	return ""
}

func servingGeneration(t *testing.T, ctx context.Context, p projections.ReadModel) uint32 {
	t.Helper()
	gens, err := p.Generations(ctx)
	if err != nil {
		t.Fatal(err)
	}
	n := projections.Serving(gens)
	if n == 0 {
		t.Fatalf("%s: no serving generation among %v", p.Name(), gens)
	}
	return n
}

// spanNames lists the names of spans, for messages.
func spanNames(spans []sdktrace.ReadOnlySpan) []string {
	names := make([]string, len(spans))
	for i, s := range spans {
		names[i] = s.Name()
	}
	return names
}
