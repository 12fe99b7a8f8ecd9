package csvimport_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/orderstream/orderstream/internal/testfixture"
	"github.com/orderstream/orderstream/producer/csvimport"
	"github.com/orderstream/orderstream/producer/store"
	"github.com/orderstream/orderstream/schemas"
	"github.com/shopspring/decimal"
	"golang.org/x/sync/errgroup"
)

// ceilingDoc is one document's rows, prebuilt: what the ceiling writes.
type ceilingDoc struct {
	order   []any
	lines   [8][]any // columns of order_lines, one array each
	outbox  [10][]any
	nEvents int
}

// BenchmarkImport imports the real file through the write side (aggregate,
// command handler, contract validation, repository) into a fresh database
// and, in the same run, measures its ceiling: the same rows (order, lines,
// outbox events with their envelopes prebuilt) written by plain pgx, one
// transaction per document in one round trip each, with the same
// concurrency and no validation. It prints both rates and their ratio.
// ORDERSTREAM_BENCH_WORKERS sets the concurrency (default
// csvimport.DefaultWorkers); ORDERSTREAM_BENCH_ROWS, when set, takes the
// first that many rows of the file instead of all of it.
//
// Beside the rates it logs, per document and for each side, the CPU time of
// this process (getrusage) and of the PostgreSQL backends serving it
// (/proc/PID/stat, when the server runs on this machine), the writes to the
// sockets (one per round trip) and the bytes sent and received.
func BenchmarkImport(b *testing.B) {
	path := testfixture.RealFile(b)
	workers := csvimport.DefaultWorkers
	if w, err := strconv.Atoi(os.Getenv("ORDERSTREAM_BENCH_WORKERS")); err == nil {
		workers = w
	}
	if n, err := strconv.Atoi(os.Getenv("ORDERSTREAM_BENCH_ROWS")); err == nil {
		path = testfixture.SampleFile(b, n)
	}
	ctx := context.Background()
	debug.SetGCPercent(csvimport.GCPercent) // as the import command runs

	for b.Loop() {
		// The prebuilt rows are dropped before the import runs: they would
		// make its collector mark the whole file at every cycle.
		ceil, want := prebuildFile(b, path)
		var cw wire
		pool, _ := newStore(b, workers, cw.count)
		cm := startMeter()
		start := time.Now()
		if err := writeCeiling(ctx, pool, ceil, workers); err != nil {
			b.Fatal(err)
		}
		ceiling := float64(len(ceil)) / time.Since(start).Seconds()
		cc := cm.stop(b, pool, &cw, len(ceil))
		runtime.GC()

		var iw wire
		ipool, repo := newStore(b, workers, iw.count)
		im := startMeter()
		sum := importPath(b, repo, workers, path)
		if sum.Imported != want {
			b.Fatalf("imported %d documents, want %d", sum.Imported, want)
		}
		ic := im.stop(b, ipool, &iw, sum.Imported)
		rate := sum.DocumentsPerSecond()
		b.ReportMetric(rate, "import_docs/s")
		b.ReportMetric(ceiling, "ceiling_docs/s")
		b.ReportMetric(100*rate/ceiling, "%_of_ceiling")
		b.Logf("per document      import  ceiling")
		b.Logf("client CPU µs    %7.0f  %7.0f", ic.clientCPU, cc.clientCPU)
		b.Logf("server CPU µs    %7.0f  %7.0f", ic.serverCPU, cc.serverCPU)
		b.Logf("round trips      %7.2f  %7.2f", ic.writes, cc.writes)
		b.Logf("bytes sent       %7.0f  %7.0f", ic.sent, cc.sent)
		b.Logf("bytes received   %7.0f  %7.0f", ic.recv, cc.recv)
	}
}

// wire counts what a pool's connections send and receive.
type wire struct{ writes, sent, recv atomic.Int64 }

// count makes cfg's connections count into w.
func (w *wire) count(cfg *pgxpool.Config) {
	cfg.ConnConfig.DialFunc = func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return &countedConn{Conn: c, w: w}, nil
	}
}

type countedConn struct {
	net.Conn
	w *wire
}

func (c *countedConn) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	c.w.writes.Add(1)
	c.w.sent.Add(int64(n))
	return n, err
}

func (c *countedConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.w.recv.Add(int64(n))
	return n, err
}

// meter measures one phase: this process's CPU time (getrusage) and, when
// PostgreSQL runs on this machine, its backends' (/proc/PID/stat).
type meter struct{ rusage syscall.Rusage }

// cost is one phase's figures per document.
type cost struct{ clientCPU, serverCPU, writes, sent, recv float64 }

func startMeter() meter {
	var m meter
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &m.rusage)
	return m
}

func (m meter) stop(b *testing.B, pool *pgxpool.Pool, w *wire, docs int) cost {
	var r syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &r)
	cpu := time.Duration(r.Utime.Nano() + r.Stime.Nano() - m.rusage.Utime.Nano() - m.rusage.Stime.Nano())
	// The backends' CPU since they started: the phase plus the migration
	// (a few ms in all). 0 when PostgreSQL is not local.
	var server time.Duration
	rows, err := pool.Query(context.Background(), `SELECT pid FROM pg_stat_activity WHERE datname = current_database()`)
	if err != nil {
		b.Fatal(err)
	}
	pids, err := pgx.CollectRows(rows, pgx.RowTo[int32])
	if err != nil {
		b.Fatal(err)
	}
	for _, pid := range pids {
		stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			continue
		}
		f := strings.Fields(string(stat[bytes.LastIndexByte(stat, ')')+1:]))
		ut, _ := strconv.ParseInt(f[11], 10, 64) // utime, stime: fields 14, 15 (clock ticks, 100/s)
		st, _ := strconv.ParseInt(f[12], 10, 64)
		server += time.Duration(ut+st) * 10 * time.Millisecond
	}
	n := float64(docs)
	return cost{clientCPU: float64(cpu.Microseconds()) / n, serverCPU: float64(server.Microseconds()) / n,
		writes: float64(w.writes.Load()) / n, sent: float64(w.sent.Load()) / n, recv: float64(w.recv.Load()) / n}
}

// prebuildFile reads the file at path and prebuilds the rows of each of its
// documents; it returns them and the number of documents.
func prebuildFile(b *testing.B, path string) ([]ceilingDoc, int) {
	f, err := os.Open(path)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	docs, _, err := csvimport.Collect(f)
	if err != nil {
		b.Fatal(err)
	}
	ceil := make([]ceilingDoc, len(docs))
	for i, d := range docs {
		ceil[i] = prebuild(b, d)
	}
	return ceil, len(docs)
}

// prebuild turns a document into the rows the write side stores for it,
// envelopes serialized without validation.
func prebuild(b *testing.B, d csvimport.Document) ceilingDoc {
	o, err := csvimport.Build(d)
	if err != nil {
		b.Fatal(err)
	}
	s := o.State()
	num := func(x decimal.Decimal) pgtype.Numeric {
		return pgtype.Numeric{Int: x.Coefficient(), Exp: x.Exponent(), Valid: true}
	}
	var customer *string
	if s.CustomerID != "" {
		customer = &s.CustomerID
	}
	cd := ceilingDoc{order: []any{s.ID, s.Number, string(s.Kind), string(s.Status), customer, s.Country, s.Currency,
		num(s.Total.Amount), num(s.Paid), num(s.Refunded), s.PlacedAt, s.Version}}
	ids, nos, srcs, stocks, descs, qtys, prices, ats := []string{}, []int32{}, []int32{}, []string{}, []string{}, []int64{}, []pgtype.Numeric{}, []time.Time{}
	for _, l := range s.Lines {
		ids, nos, srcs = append(ids, s.ID), append(nos, int32(l.LineNo)), append(srcs, int32(l.SourceLine))
		stocks, descs, qtys = append(stocks, l.StockCode), append(descs, l.Description), append(qtys, l.Quantity)
		prices, ats = append(prices, num(l.UnitPrice.Amount)), append(ats, l.InvoicedAt)
	}
	cd.lines = [8][]any{{ids}, {nos}, {srcs}, {stocks}, {descs}, {qtys}, {prices}, {ats}}
	var evIDs, aggIDs, types, envs []string
	var versions []int64
	var schemaVersions []int32
	var occurred, recorded []time.Time
	for _, c := range o.Changes() {
		env, err := schemas.NewEnvelope(s.ID, c.Version, c.OccurredAt, c.Payload, schemas.Metadata{CorrelationID: "ceiling", CausationID: "invoice:" + s.Number})
		if err != nil {
			b.Fatal(err)
		}
		raw, err := json.Marshal(env)
		if err != nil {
			b.Fatal(err)
		}
		evIDs, aggIDs, types, envs = append(evIDs, env.EventID.String()), append(aggIDs, env.AggregateID), append(types, env.EventType), append(envs, string(raw))
		versions, schemaVersions = append(versions, env.AggregateVersion), append(schemaVersions, int32(env.SchemaVersion))
		occurred, recorded = append(occurred, env.OccurredAt), append(recorded, env.RecordedAt)
	}
	cd.outbox = [10][]any{{evIDs}, {aggIDs}, {versions}, {types}, {schemaVersions}, {occurred}, {recorded}, {envs}}
	cd.nEvents = len(evIDs)
	return cd
}

// writeCeiling writes every prebuilt document with workers connections, each
// document in one implicit transaction (one pgx batch: one round trip, one
// commit).
func writeCeiling(ctx context.Context, pool *pgxpool.Pool, docs []ceilingDoc, workers int) error {
	g, ctx := errgroup.WithContext(ctx)
	next := make(chan int)
	g.Go(func() error {
		defer close(next)
		for i := range docs {
			select {
			case next <- i:
			case <-ctx.Done():
				return nil
			}
		}
		return nil
	})
	for range workers {
		g.Go(func() error {
			for i := range next {
				d := &docs[i]
				batch := &pgx.Batch{}
				batch.Queue(`INSERT INTO orders (order_id, order_number, kind, status, customer_id, country, currency, total, paid, refunded, placed_at, version)
					VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)`, d.order...)
				batch.Queue(`INSERT INTO order_lines (order_id, line_no, source_line, stock_code, description, quantity, unit_price, invoiced_at)
					SELECT * FROM unnest($1::text[], $2::int[], $3::int[], $4::text[], $5::text[], $6::bigint[], $7::numeric[], $8::timestamptz[])`,
					d.lines[0][0], d.lines[1][0], d.lines[2][0], d.lines[3][0], d.lines[4][0], d.lines[5][0], d.lines[6][0], d.lines[7][0])
				batch.Queue(`INSERT INTO outbox (event_id, aggregate_type, aggregate_id, aggregate_version, event_type, schema_version, occurred_at, recorded_at, envelope)
					SELECT e, 'order', a, v, t, s, o, r, j::json FROM unnest($1::uuid[], $2::text[], $3::bigint[], $4::text[], $5::int[], $6::timestamptz[], $7::timestamptz[], $8::text[]) AS u(e, a, v, t, s, o, r, j)`,
					d.outbox[0][0], d.outbox[1][0], d.outbox[2][0], d.outbox[3][0], d.outbox[4][0], d.outbox[5][0], d.outbox[6][0], d.outbox[7][0])
				if err := pool.SendBatch(ctx, batch).Close(); err != nil {
					return err
				}
			}
			return nil
		})
	}
	return g.Wait()
}

func importPath(b *testing.B, repo *store.Repository, workers int, path string) csvimport.Summary {
	im, err := csvimport.New(csvimport.Config{Workers: workers}, viaHandler(repo))
	if err != nil {
		b.Fatal(err)
	}
	sum, _, err := im.ImportStream(context.Background(), csvimport.FileSource(path))
	if err != nil {
		b.Fatal(err)
	}
	return sum
}
