package csvimport

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/cenkalti/backoff/v5"
	"github.com/google/uuid"
	"github.com/orderstream/orderstream/internal/retry"
	"github.com/orderstream/orderstream/internal/tracing"
	"github.com/orderstream/orderstream/producer/order"
	"github.com/orderstream/orderstream/producer/store"
	"github.com/orderstream/orderstream/schemas"
	"go.opentelemetry.io/otel/attribute"
	"golang.org/x/sync/errgroup"
)

// Placer places a new order through the write side's command handler
// (command.Handler.Place): the aggregate decides, then, when then is not
// nil, then decides more on the placed order (pay, refund), and the store
// saves the order, its lines and its events in one transaction. Its store
// errors are sorted by store.Classify; an aggregate's refusal is a
// *order.RuleError.
type Placer interface {
	Place(ctx context.Context, id string, in order.PlaceInput, then func(*order.Order) error, md schemas.Metadata) error
}

// writtenBy is the optional capability of a Placer (command.Handler on
// store.Repository has it) that tells, after a retried save found the order
// present, whether the earlier attempt of this run committed it. Without it,
// or when it answers errors.ErrUnsupported, such a document is counted as
// already present.
type writtenBy interface {
	WrittenBy(ctx context.Context, id, correlationID string) (bool, error)
}

// Defaults of Config.
const (
	DefaultWorkers      = 16
	DefaultRetryTimeout = 2 * time.Minute
)

// GCPercent is the garbage collector's target (runtime/debug.SetGCPercent)
// the import command runs with unless GOGC is set. An import's live heap is
// bounded by Config (Workers documents in flight, the partition files'
// buffers): a few MB that do not grow with the file. Collecting when the
// heap reaches 5× it instead of Go's default 2× keeps peak RSS bounded and
// cuts the collector's share of the import's CPU: on the real file, from
// about 15 % to 4 % of the process's CPU (BenchmarkImport, pprof).
const GCPercent = 400

// Config configures an Importer.
type Config struct {
	// Workers is the number of documents saved concurrently (each in its own
	// transaction, so each needs its own database connection). Default
	// DefaultWorkers (16: enough commits in flight for PostgreSQL to flush
	// several with one WAL fsync; each document is one round trip); at most
	// 256.
	Workers int
	// RetryTimeout is how long one document is retried after transient
	// errors (store.Transient: connection lost or refused, server shutting
	// down or restarting, serialization failure, deadlock), with exponential
	// backoff from 100 ms to 5 s, before the import stops with the error.
	// Default DefaultRetryTimeout (2 min: a PostgreSQL restart or failover);
	// at most 24 h.
	RetryTimeout time.Duration
}

func (c *Config) setDefaults() {
	if c.Workers == 0 {
		c.Workers = DefaultWorkers
	}
	if c.RetryTimeout == 0 {
		c.RetryTimeout = DefaultRetryTimeout
	}
}

// Validate reports every problem of c at once.
func (c Config) Validate() error {
	var errs []error
	if c.Workers < 1 || c.Workers > 256 {
		errs = append(errs, fmt.Errorf("workers = %d: want 1 to 256", c.Workers))
	}
	if c.RetryTimeout < 0 || c.RetryTimeout > 24*time.Hour {
		errs = append(errs, fmt.Errorf("retry timeout = %s: want 0 (default %s) to 24h", c.RetryTimeout, DefaultRetryTimeout))
	}
	return errors.Join(errs...)
}

// Option configures optional collaborators of an Importer.
type Option func(*Importer)

// WithLogger sets the logger (default: discard).
func WithLogger(l *slog.Logger) Option { return func(im *Importer) { im.log = l } }

// WithProgress sets a function called after each document was handled
// (imported, found present or failed), from any worker goroutine, with the
// document. Default: none. It must be safe for concurrent use and fast.
func WithProgress(fn func(Document)) Option { return func(im *Importer) { im.progress = fn } }

// Importer saves documents as orders through the write side. It is safe for
// concurrent use; each Import call is independent.
type Importer struct {
	cfg      Config
	placer   Placer
	log      *slog.Logger
	progress func(Document)
}

// New returns an importer placing orders through p (a *command.Handler).
func New(cfg Config, p Placer, opts ...Option) (*Importer, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("csvimport config: %w", err)
	}
	if p == nil {
		return nil, errors.New("csvimport: nil Placer")
	}
	im := &Importer{cfg: cfg, placer: p, log: slog.New(slog.DiscardHandler)}
	for _, o := range opts {
		o(im)
	}
	return im, nil
}

// Summary is the outcome of one Import. Every document handed in is
// counted in exactly one of Imported, Present and Failed, except when the
// import stopped (Import returned an error): documents not reached then are
// in none, and one whose save was interrupted may have committed uncounted
// (a re-run reports it as present).
type Summary struct {
	Documents int // documents handed in
	Imported  int // saved by this run
	Present   int // already imported before (same InvoiceNo): nothing written
	Failed    int // refused: malformed rows, a rule of the aggregate or data PostgreSQL refuses; nothing written
	BadRows   int // malformed rows in the refused documents
	Events    int // outbox events written by this run
	Lines     int // order lines written by this run
	Retries   int // saves repeated after a transient error
	Duration  time.Duration
	// Problems lists one *DocumentError per refused document, in the order
	// the documents were handed in.
	Problems []*DocumentError
}

// RefusedLines returns the lines of the refused documents that were not
// malformed (well-formed rows not imported because their document was
// refused).
func (s Summary) RefusedLines() int {
	n := 0
	for _, p := range s.Problems {
		n += p.lines
	}
	return n
}

// DocumentsPerSecond is the rate of handled documents.
func (s Summary) DocumentsPerSecond() float64 {
	if s.Duration <= 0 {
		return 0
	}
	return float64(s.Imported+s.Present+s.Failed) / s.Duration.Seconds()
}

// DocumentError is a document that was not imported because of its content:
// its malformed rows (Rows, each naming line and column), the aggregate's
// refusal (Err, a wrapped *order.RuleError) or PostgreSQL's (Err, a
// store.Refused error). One document is one transaction: a document with
// one bad row is refused whole.
type DocumentError struct {
	Number    string
	FirstLine int
	Rows      []*RowError
	Err       error

	lines int // well-formed lines of the document
}

func (e *DocumentError) Error() string {
	if len(e.Rows) > 0 {
		return fmt.Sprintf("document %s: %d malformed rows, first: %v", e.Number, len(e.Rows), e.Rows[0])
	}
	return fmt.Sprintf("document %s (line %d): %v", e.Number, e.FirstLine, e.Err)
}

func (e *DocumentError) Unwrap() error { return e.Err }

// cause is e as an error, nil for a nil e.
func (e *DocumentError) cause() error {
	if e == nil {
		return nil
	}
	return e
}

// Import saves every document as one order, Workers at a time, each in its
// own transaction (see package doc). A document with malformed rows, one
// the aggregate refuses or one PostgreSQL refuses (store.Refused) is counted
// in Summary.Failed and listed in Summary.Problems; one already imported is
// counted in Summary.Present; the others go on. A transient error
// (store.Transient) is retried for that document for up to RetryTimeout;
// a save that is retried and finds its order written by its own earlier
// attempt (the connection dropped at COMMIT) counts as imported, once.
//
// Any other error (store.Fatal, retries exhausted, ctx cancelled) stops the
// import: no new document is started, the saves in flight finish and are
// counted, and the error is returned with the summary so far; documents
// saved before stay saved and a re-run completes the rest.
func (im *Importer) Import(ctx context.Context, docs []Document) (Summary, error) {
	return im.run(ctx, func(_ context.Context, send func(Document) bool) error {
		for _, d := range docs {
			if !send(d) {
				return nil
			}
		}
		return nil
	})
}

// ImportStream imports the documents of src as Import does, reading them
// with Stream: documents are saved while the file is read, and memory does
// not grow with the file. Summary.Problems come in the order the documents
// were read (of their last row). A read error (I/O, header, the input
// changing between passes) stops the import like a fatal error, and is
// returned with the summary so far.
func (im *Importer) ImportStream(ctx context.Context, src Source) (Summary, Stats, error) {
	var st Stats
	sum, err := im.run(ctx, func(ctx context.Context, send func(Document) bool) error {
		var err error
		st, err = Stream(ctx, src, func(d Document) error {
			if !send(d) {
				return context.Canceled // the import stopped: read no further
			}
			return nil
		})
		if errors.Is(err, context.Canceled) && ctx.Err() != nil {
			return nil // stopped by the import's own error, returned by run
		}
		return err
	})
	return sum, st, err
}

// run saves the documents feed sends, Workers at a time. send reports false
// once the import stopped; feed then returns. An error of feed stops the
// import.
func (im *Importer) run(ctx context.Context, feed func(ctx context.Context, send func(Document) bool) error) (Summary, error) {
	start := time.Now()
	var sum Summary
	runID, err := uuid.NewV7()
	if err != nil {
		return sum, fmt.Errorf("run id: %w", err)
	}
	type problem struct {
		seq int
		err *DocumentError
	}
	var problems []problem
	var mu sync.Mutex
	// gctx ends at the first error that stops the import: it stops handing
	// out documents and retrying; the saves themselves run under ctx, so
	// one in flight finishes and is counted.
	g, gctx := errgroup.WithContext(ctx)
	type job struct {
		seq int
		doc Document
	}
	next := make(chan job, im.cfg.Workers)
	g.Go(func() error {
		defer close(next)
		seq := 0
		return feed(gctx, func(d Document) bool {
			select {
			case next <- job{seq, d}:
				seq++
				mu.Lock()
				sum.Documents++
				mu.Unlock()
				return true
			case <-gctx.Done():
				return false
			}
		})
	})
	for range im.cfg.Workers {
		g.Go(func() error {
			for j := range next {
				if gctx.Err() != nil {
					continue // stopped: start no new document
				}
				d := j.doc
				res, err := im.one(ctx, gctx, d, runID.String())
				mu.Lock()
				sum.Retries += res.retries
				switch {
				case err != nil:
				case res.problem != nil:
					sum.Failed++
					sum.BadRows += len(res.problem.Rows)
					problems = append(problems, problem{j.seq, res.problem})
				case res.present:
					sum.Present++
				default:
					sum.Imported++
					sum.Events += res.events
					sum.Lines += len(d.Lines)
				}
				mu.Unlock()
				if err != nil {
					return err
				}
				if im.progress != nil {
					im.progress(d)
				}
			}
			return nil
		})
	}
	err = g.Wait()
	slices.SortFunc(problems, func(a, b problem) int { return a.seq - b.seq })
	for _, p := range problems {
		sum.Problems = append(sum.Problems, p.err)
	}
	sum.Duration = time.Since(start)
	if err == nil {
		err = ctx.Err() // cancelled while the last documents were handed out
	}
	if err != nil {
		return sum, fmt.Errorf("import: %w", err)
	}
	return sum, nil
}

type result struct {
	present bool
	events  int
	retries int
	problem *DocumentError
}

// one builds and saves one document, retrying transient errors while
// retryCtx lasts; saves run under ctx. It returns an error only for what
// stops the import.
func (im *Importer) one(ctx, retryCtx context.Context, d Document, runID string) (res result, err error) {
	ctx, span := tracing.Start(ctx, "import document", "", tracing.KeyOrderNumber.String(d.Number), attribute.Int("orderstream.line", d.FirstLine))
	defer func() { tracing.End(span, errors.Join(err, res.problem.cause())) }()
	refuse := func(err error) (result, error) {
		return result{problem: &DocumentError{Number: d.Number, FirstLine: d.FirstLine, Rows: d.Errs, Err: err, lines: len(d.Lines)}}, nil
	}
	if len(d.Errs) > 0 {
		return refuse(d.Err())
	}
	id := OrderID(d.Number)
	span.SetAttributes(tracing.KeyOrderID.String(id))
	// The command's span (producer/command) is a child of this one; its
	// traceparent is what the events carry.
	md := schemas.Metadata{CorrelationID: "import:" + runID, CausationID: "invoice:" + d.Number, Traceparent: tracing.Traceparent(ctx)}
	uncertain := false // an earlier attempt failed in a way that may have committed
	attempt := func() (result, error) {
		events := 0
		err := im.placer.Place(ctx, id, placeInput(d), func(o *order.Order) error {
			if err := settle(d, o); err != nil {
				return err
			}
			events = len(o.Changes())
			return nil
		}, md)
		var rule *order.RuleError
		switch {
		case err == nil:
			return result{events: events}, nil
		case errors.As(err, &rule):
			return refuse(fmt.Errorf("document %s (line %d): %w", d.Number, d.FirstLine, err))
		// The id is derived from the number, so an existing id is the same
		// document imported before, just as an existing number is.
		case errors.Is(err, store.ErrDuplicateNumber), errors.Is(err, store.ErrConflict):
			if w, ok := im.placer.(writtenBy); ok && uncertain {
				mine, err := w.WrittenBy(ctx, id, md.CorrelationID)
				if err != nil && !errors.Is(err, errors.ErrUnsupported) {
					return im.retryOrStop(d, err, &uncertain)
				}
				if mine {
					im.log.Info("document committed by an earlier attempt whose outcome was unknown", "order_number", d.Number, "order_id", id)
					return result{events: events}, nil
				}
			}
			im.log.Debug("document already imported", "order_number", d.Number, "order_id", id)
			return result{present: true}, nil
		case errors.Is(err, schemas.ErrInvalidEvent):
			return refuse(err)
		}
		return im.retryOrStop(d, err, &uncertain)
	}
	attempts := 0
	res, err = backoff.Retry(retryCtx, func() (result, error) {
		attempts++
		return attempt()
	},
		backoff.WithBackOff(retry.Exponential(100*time.Millisecond, 5*time.Second)),
		backoff.WithMaxElapsedTime(im.cfg.RetryTimeout))
	res.retries = attempts - 1
	if err != nil {
		return res, fmt.Errorf("document %s (line %d): %w", d.Number, d.FirstLine, err)
	}
	return res, nil
}

// retryOrStop sorts an error of a save: a refused document becomes its
// problem; a transient error is returned for a retry (and marks the outcome
// uncertain); anything else stops the import.
func (im *Importer) retryOrStop(d Document, err error, uncertain *bool) (result, error) {
	switch store.Classify(err) {
	case store.Refused:
		return result{problem: &DocumentError{Number: d.Number, FirstLine: d.FirstLine, Err: err, lines: len(d.Lines)}}, nil
	case store.Transient:
		*uncertain = true
		im.log.Warn("transient database error, retrying the document", "order_number", d.Number, "err", err)
		return result{}, err
	}
	return result{}, backoff.Permanent(err)
}
