package csvimport_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/orderstream/orderstream/producer/csvimport"
	"github.com/orderstream/orderstream/producer/order"
	"github.com/orderstream/orderstream/producer/store"
	"github.com/orderstream/orderstream/schemas"
)

// saveFunc is a saver made of a function, to inject faults around
// the real repository.
type saveFunc func(ctx context.Context, o *order.Order, md schemas.Metadata) error

func (f saveFunc) Save(ctx context.Context, o *order.Order, md schemas.Metadata) error {
	return f(ctx, o, md)
}

// writtenBySaver adds the repository's WrittenBy to a saveFunc.
type writtenBySaver struct {
	saveFunc
	repo *store.Repository
}

func (s writtenBySaver) WrittenBy(ctx context.Context, id, correlationID string) (bool, error) {
	return s.repo.WrittenBy(ctx, id, correlationID)
}

// sales returns a CSV of n one-line sales 600001.. .
func sales(n int) string {
	var b strings.Builder
	b.WriteString(header)
	for i := range n {
		fmt.Fprintf(&b, "%d,P%d,PRODUCT,%d,2011-01-02 10:00:00,1.25,12345,France\n", 600001+i, i, i+1)
	}
	return b.String()
}

func collect(t *testing.T, content string) []csvimport.Document {
	t.Helper()
	docs, _, err := csvimport.Collect(strings.NewReader(content))
	if err != nil {
		t.Fatal(err)
	}
	return docs
}

func newImporter(t *testing.T, s saver, workers int) *csvimport.Importer {
	t.Helper()
	log := slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
	im, err := csvimport.New(csvimport.Config{Workers: workers, RetryTimeout: 20 * time.Second}, viaHandler(s), csvimport.WithLogger(log))
	if err != nil {
		t.Fatal(err)
	}
	return im
}

// checkWritten compares the database with the summary: every imported
// document is there exactly once with its two events, nothing else.
func checkWritten(t *testing.T, pool *pgxpool.Pool, sum csvimport.Summary, wantOrders int) {
	t.Helper()
	orders := count(t, pool, `SELECT count(*) FROM orders`)
	events := count(t, pool, `SELECT count(*) FROM outbox`)
	if orders != wantOrders || events != 2*wantOrders || sum.Imported+sum.Present != wantOrders || sum.Events != 2*sum.Imported {
		t.Errorf("database: %d orders, %d events; summary %+v; want %d orders with 2 events each", orders, events, sum, wantOrders)
	}
	if dup := count(t, pool, `SELECT count(*) FROM (SELECT aggregate_id FROM outbox GROUP BY aggregate_id HAVING count(*) <> 2) x`); dup != 0 {
		t.Errorf("%d orders without exactly 2 events", dup)
	}
}

// TestImportSurvivesBadRows imports a file whose bad rows used to stop the
// import (invalid UTF-8 reached PostgreSQL) or the whole file (a quote never
// closed): every good document is imported, each bad row is reported, the
// counts are exact.
func TestImportSurvivesBadRows(t *testing.T) {
	t.Parallel()
	pool, repo := newStore(t, 2)
	content := header +
		"536365,85123A,WHITE HANGING HEART,6,2010-12-01 08:26:00,2.55,17850,United Kingdom\n" + // 2
		"536366,22728,ALARM CLOCK \xe9T\xe9,6,2010-12-01 08:45:00,3.75,12583,France\n" + // 3 Latin-1, not UTF-8
		"536366,22729,ALARM CLOCK,6,2010-12-01 08:45:00,3.75,12583,France\n" + // 4 fine, same document
		"536367,22086,\"PAPER CHAIN KIT,80,2010-12-01 09:00:00,2.55,13748,United Kingdom\n" + // 5 quote never closed
		"536368,22633,HAND WARMER,6,2010-12-01 08:28:00,1.85,,Unspecified\n" + // 6
		"536369,P,BIG,1000,2010-12-01 09:10:00,1000000000000,15100,United Kingdom\n" + // 7 beyond the range
		"C536370,D,Discount,-1,2010-12-01 09:41:00,27.50,14527,United Kingdom\n" // 8
	sum := importFile(t, repo, 2, strings.NewReader(content))
	if sum.Documents != 6 || sum.Imported != 3 || sum.Present != 0 || sum.Failed != 3 || sum.BadRows != 3 || sum.RefusedLines() != 1 {
		t.Errorf("summary = %+v (refused lines %d), want 3 imported, 3 refused with 3 bad rows and 1 good line refused", sum, sum.RefusedLines())
	}
	checkWritten(t, pool, sum, 3)
	for _, n := range []string{"536365", "536368", "C536370"} {
		if count(t, pool, `SELECT count(*) FROM orders WHERE order_number = $1`, n) != 1 {
			t.Errorf("good document %s not imported", n)
		}
	}
}

// TestImportRefusedByDatabase: a document PostgreSQL refuses (a data
// exception) is reported and the others are imported.
func TestImportRefusedByDatabase(t *testing.T) {
	t.Parallel()
	pool, repo := newStore(t, 2)
	bad := csvimport.OrderID("600003")
	s := saveFunc(func(ctx context.Context, o *order.Order, md schemas.Metadata) error {
		if o.ID() == bad {
			return fmt.Errorf("save: %w", &pgconn.PgError{Code: "22021", Message: "invalid byte sequence for encoding \"UTF8\""})
		}
		return repo.Save(ctx, o, md)
	})
	sum, err := newImporter(t, s, 2).Import(context.Background(), collect(t, sales(8)))
	if err != nil {
		t.Fatalf("import stopped: %v", err)
	}
	if sum.Imported != 7 || sum.Failed != 1 || len(sum.Problems) != 1 || sum.Problems[0].Number != "600003" || !strings.Contains(sum.Problems[0].Error(), "22021") {
		t.Fatalf("summary = %+v, want 7 imported and 600003 refused", sum)
	}
	checkWritten(t, pool, sum, 7)
}

// TestImportFatalErrorCountsExactly: an error that stops the import leaves a
// summary equal to what was written.
func TestImportFatalErrorCountsExactly(t *testing.T) {
	t.Parallel()
	pool, repo := newStore(t, 4)
	fatal := csvimport.OrderID("600010")
	s := saveFunc(func(ctx context.Context, o *order.Order, md schemas.Metadata) error {
		if o.ID() == fatal {
			return &pgconn.PgError{Code: "42501", Message: "permission denied for table orders"}
		}
		return repo.Save(ctx, o, md)
	})
	sum, err := newImporter(t, s, 4).Import(context.Background(), collect(t, sales(40)))
	if err == nil || !strings.Contains(err.Error(), "42501") {
		t.Fatalf("err = %v, want the permission error", err)
	}
	if sum.Imported < 9 || sum.Imported >= 39 {
		t.Errorf("imported %d: want the import to stop soon after document 10", sum.Imported)
	}
	checkWritten(t, pool, sum, sum.Imported)
}

// terminator terminates the backend of the first INSERT INTO orders of one
// order, from another connection, before the statement is sent: the
// transaction then fails with 57P01 admin_shutdown, as when PostgreSQL is
// restarted in the middle of an import.
type terminator struct {
	admin   *pgxpool.Pool
	orderID string
	once    sync.Once
	err     error
}

func (tr *terminator) TraceQueryStart(ctx context.Context, conn *pgx.Conn, data pgx.TraceQueryStartData) context.Context {
	if !strings.Contains(data.SQL, "INSERT INTO orders") || len(data.Args) == 0 || data.Args[0] != tr.orderID {
		return ctx
	}
	tr.once.Do(func() {
		var ok bool
		tr.err = tr.admin.QueryRow(context.Background(), `SELECT pg_terminate_backend($1, 10000)`, conn.PgConn().PID()).Scan(&ok)
		if tr.err == nil && !ok {
			tr.err = errors.New("pg_terminate_backend answered false")
		}
	})
	return ctx
}

func (tr *terminator) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}

// TestImportRetriesTerminatedConnection: the import's connection is
// terminated by the server in the middle of a document (57P01): the
// document is retried on a new connection and every document is written
// exactly once.
func TestImportRetriesTerminatedConnection(t *testing.T) {
	t.Parallel()
	tr := &terminator{orderID: csvimport.OrderID("600005")}
	pool, repo := newStore(t, 2, func(c *pgxpool.Config) { c.ConnConfig.Tracer = tr })
	admin, err := pgxpool.New(context.Background(), pool.Config().ConnString())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(admin.Close)
	tr.admin = admin
	sum, err := newImporter(t, repo, 2).Import(context.Background(), collect(t, sales(10)))
	if tr.err != nil {
		t.Fatalf("terminate: %v", tr.err)
	}
	if err != nil {
		t.Fatalf("import stopped: %v", err)
	}
	if sum.Imported != 10 || sum.Retries < 1 {
		t.Errorf("summary = %+v, want 10 imported after at least one retry", sum)
	}
	checkWritten(t, pool, sum, 10)
}

// TestImportCommitOutcomeUnknown: the connection drops after COMMIT reached
// the server, so the import sees an error although the document is saved.
// The retry finds it present and, seeing its own events, counts it as
// imported by this run (once); a document imported by an earlier run whose
// save fails the same way is counted as present.
func TestImportCommitOutcomeUnknown(t *testing.T) {
	t.Parallel()
	pool, repo := newStore(t, 2)
	lost := csvimport.OrderID("600004")
	var mu sync.Mutex
	failed := map[string]bool{}
	s := writtenBySaver{repo: repo, saveFunc: func(ctx context.Context, o *order.Order, md schemas.Metadata) error {
		id := o.ID()
		err := repo.Save(ctx, o, md)
		mu.Lock()
		defer mu.Unlock()
		if id == lost && !failed[md.CorrelationID] {
			failed[md.CorrelationID] = true
			return fmt.Errorf("commit: %w (saved: %v)", &pgconn.PgError{Severity: "FATAL", Code: "57P01", Message: "terminating connection due to administrator command"}, err)
		}
		return err
	}}
	docs := collect(t, sales(6))
	sum, err := newImporter(t, s, 2).Import(context.Background(), docs)
	if err != nil {
		t.Fatalf("import stopped: %v", err)
	}
	if sum.Imported != 6 || sum.Present != 0 || sum.Retries != 1 {
		t.Errorf("first run: summary = %+v, want 6 imported, 0 present, 1 retry", sum)
	}
	checkWritten(t, pool, sum, 6)

	again, err := newImporter(t, s, 2).Import(context.Background(), docs)
	if err != nil {
		t.Fatalf("second run stopped: %v", err)
	}
	if again.Imported != 0 || again.Present != 6 || again.Retries != 1 {
		t.Errorf("second run: summary = %+v, want 6 present after 1 retry", again)
	}
	checkWritten(t, pool, again, 6)
}

// proxy forwards TCP connections to a PostgreSQL server; stop makes the
// server look down (open connections reset, new ones refused) until start.
type proxy struct {
	target string
	addr   string
	mu     sync.Mutex
	ln     net.Listener
	conns  []net.Conn
}

func (p *proxy) start() error {
	ln, err := net.Listen("tcp", p.addr)
	if err != nil {
		return err
	}
	p.mu.Lock()
	p.ln, p.addr = ln, ln.Addr().String()
	p.mu.Unlock()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s, err := net.Dial("tcp", p.target)
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, c, s)
			p.mu.Unlock()
			go func() { _, _ = io.Copy(s, c); s.Close() }()
			go func() { _, _ = io.Copy(c, s); c.Close() }()
		}
	}()
	return nil
}

func (p *proxy) stop() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.ln.Close()
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
}

// TestImportRetriesWhileServerDown: the database goes away in the middle of
// an import (connections reset, then refused) and comes back 2 s later: the
// documents are retried until it answers and every one is written once.
func TestImportRetriesWhileServerDown(t *testing.T) {
	t.Parallel()
	px := &proxy{addr: "127.0.0.1:0"}
	pool, repo := newStore(t, 2, func(c *pgxpool.Config) {
		px.target = net.JoinHostPort(c.ConnConfig.Host, strconv.Itoa(int(c.ConnConfig.Port)))
		if err := px.start(); err != nil {
			t.Fatal(err)
		}
		host, port, _ := net.SplitHostPort(px.addr)
		p, _ := strconv.Atoi(port)
		c.ConnConfig.Host, c.ConnConfig.Port = host, uint16(p)
	})
	t.Cleanup(px.stop)
	down := csvimport.OrderID("600004")
	var once sync.Once
	var mu sync.Mutex
	var refused bool
	// A save in flight when the connections drop may commit with its
	// outcome unknown to the client: the repository's WrittenBy tells the
	// import it was its own write (imported, not present).
	s := writtenBySaver{repo: repo, saveFunc: func(ctx context.Context, o *order.Order, md schemas.Metadata) error {
		if o.ID() == down {
			once.Do(func() {
				px.stop()
				restart := time.AfterFunc(2*time.Second, func() { // the outage's length, not a wait
					if err := px.start(); err != nil {
						t.Errorf("restart proxy: %v", err)
					}
				})
				t.Cleanup(func() { restart.Stop() })
			})
		}
		err := repo.Save(ctx, o, md)
		if errors.Is(err, syscall.ECONNREFUSED) {
			mu.Lock()
			refused = true
			mu.Unlock()
		}
		return err
	}}
	start := time.Now()
	sum, err := newImporter(t, s, 2).Import(context.Background(), collect(t, sales(10)))
	if err != nil {
		t.Fatalf("import stopped: %v", err)
	}
	if sum.Imported != 10 || sum.Retries < 1 || !refused || time.Since(start) < 2*time.Second {
		t.Errorf("summary = %+v after %s (connection refused seen: %v), want 10 imported after retries through the outage", sum, time.Since(start), refused)
	}
	checkWritten(t, pool, sum, 10)
}
