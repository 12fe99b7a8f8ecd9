package csvimport

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/orderstream/orderstream/producer/order"
	"github.com/orderstream/orderstream/producer/store"
	"github.com/orderstream/orderstream/schemas"
	"golang.org/x/sync/errgroup"
)

// Saver persists an order's pending changes (store.Repository.Save): state,
// lines and outbox events in one transaction.
type Saver interface {
	Save(ctx context.Context, o *order.Order, md schemas.Metadata) error
}

// DefaultWorkers is the default number of documents saved at once.
const DefaultWorkers = 4

// Config configures an Importer.
type Config struct {
	// Workers is the number of documents saved concurrently (each in its own
	// transaction, so each needs its own database connection). Default
	// DefaultWorkers; at most 256.
	Workers int
}

func (c *Config) setDefaults() {
	if c.Workers == 0 {
		c.Workers = DefaultWorkers
	}
}

// Validate reports every problem of c at once.
func (c Config) Validate() error {
	var errs []error
	if c.Workers < 1 || c.Workers > 256 {
		errs = append(errs, fmt.Errorf("workers = %d: want 1 to 256", c.Workers))
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
	saver    Saver
	log      *slog.Logger
	progress func(Document)
}

// New returns an importer saving through s.
func New(cfg Config, s Saver, opts ...Option) (*Importer, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("csvimport config: %w", err)
	}
	if s == nil {
		return nil, errors.New("csvimport: nil Saver")
	}
	im := &Importer{cfg: cfg, saver: s, log: slog.New(slog.DiscardHandler)}
	for _, o := range opts {
		o(im)
	}
	return im, nil
}

// Summary is the outcome of one Import.
type Summary struct {
	Documents int // documents handed in
	Imported  int // saved by this run
	Present   int // already imported before (same InvoiceNo): nothing written
	Failed    int // refused: malformed rows or a rule of the aggregate; nothing written
	BadRows   int // malformed rows in the failed documents
	Events    int // outbox events written by this run
	Lines     int // order lines written by this run
	Duration  time.Duration
	// Problems lists one *DocumentError per failed document, in the order
	// the documents were handed in.
	Problems []*DocumentError
}

// DocumentsPerSecond is the rate of handled documents.
func (s Summary) DocumentsPerSecond() float64 {
	if s.Duration <= 0 {
		return 0
	}
	return float64(s.Imported+s.Present+s.Failed) / s.Duration.Seconds()
}

// DocumentError is a document that was not imported because of its content:
// its malformed rows (Rows, each naming line and column) or the aggregate's
// refusal (Err, a wrapped *order.RuleError).
type DocumentError struct {
	Number    string
	FirstLine int
	Rows      []*RowError
	Err       error
}

func (e *DocumentError) Error() string {
	if len(e.Rows) > 0 {
		return fmt.Sprintf("document %s: %d malformed rows, first: %v", e.Number, len(e.Rows), e.Rows[0])
	}
	return fmt.Sprintf("document %s (line %d): %v", e.Number, e.FirstLine, e.Err)
}

func (e *DocumentError) Unwrap() error { return e.Err }

// Import saves every document as one order, Workers at a time, each in its
// own transaction (see package doc). A document with malformed rows or one
// the aggregate refuses is counted in Summary.Failed and listed in
// Summary.Problems; one already imported is counted in Summary.Present.
//
// Any other error (database unreachable, ctx cancelled) stops the import and
// is returned with the summary so far; documents saved before stay saved and
// a re-run completes the rest.
func (im *Importer) Import(ctx context.Context, docs []Document) (Summary, error) {
	start := time.Now()
	sum := Summary{Documents: len(docs)}
	runID, err := uuid.NewV7()
	if err != nil {
		return sum, fmt.Errorf("run id: %w", err)
	}
	problems := make([]*DocumentError, len(docs))
	var mu sync.Mutex
	g, gctx := errgroup.WithContext(ctx)
	next := make(chan int)
	g.Go(func() error {
		defer close(next)
		for i := range docs {
			select {
			case next <- i:
			case <-gctx.Done():
				return gctx.Err()
			}
		}
		return nil
	})
	for range im.cfg.Workers {
		g.Go(func() error {
			for i := range next {
				d := docs[i]
				res, err := im.one(gctx, d, runID.String())
				if err != nil {
					return err
				}
				mu.Lock()
				switch {
				case res.problem != nil:
					sum.Failed++
					sum.BadRows += len(res.problem.Rows)
					problems[i] = res.problem
				case res.present:
					sum.Present++
				default:
					sum.Imported++
					sum.Events += res.events
					sum.Lines += len(d.Lines)
				}
				mu.Unlock()
				if im.progress != nil {
					im.progress(d)
				}
			}
			return nil
		})
	}
	err = g.Wait()
	for _, p := range problems {
		if p != nil {
			sum.Problems = append(sum.Problems, p)
		}
	}
	sum.Duration = time.Since(start)
	if err != nil {
		return sum, fmt.Errorf("import: %w", err)
	}
	return sum, nil
}

type result struct {
	present bool
	events  int
	problem *DocumentError
}

// one builds and saves one document. It returns an error only for what
// stops the import.
func (im *Importer) one(ctx context.Context, d Document, runID string) (result, error) {
	if len(d.Errs) > 0 {
		return result{problem: &DocumentError{Number: d.Number, FirstLine: d.FirstLine, Rows: d.Errs, Err: d.Err()}}, nil
	}
	o, err := Build(d)
	if err != nil {
		return result{problem: &DocumentError{Number: d.Number, FirstLine: d.FirstLine, Err: err}}, nil
	}
	events := len(o.Changes())
	md := schemas.Metadata{CorrelationID: "import:" + runID, CausationID: "invoice:" + d.Number}
	err = im.saver.Save(ctx, o, md)
	switch {
	case err == nil:
		return result{events: events}, nil
	// The id is derived from the number, so an existing id is the same
	// document imported before, just as an existing number is.
	case errors.Is(err, store.ErrDuplicateNumber), errors.Is(err, store.ErrConflict):
		im.log.Debug("document already imported", "order_number", d.Number, "order_id", o.ID())
		return result{present: true}, nil
	case errors.Is(err, schemas.ErrInvalidEvent):
		return result{problem: &DocumentError{Number: d.Number, FirstLine: d.FirstLine, Err: err}}, nil
	}
	return result{}, fmt.Errorf("document %s (line %d): %w", d.Number, d.FirstLine, err)
}
