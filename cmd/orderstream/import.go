package main

import (
	"context"
	"errors"

	"fmt"
	"io"
	"io/fs"
	"os"
	"runtime/debug"
	"time"

	// Europe/London must convert InvoiceDate on hosts without a zoneinfo
	// database (slim containers): embed it in the binary.
	_ "time/tzdata"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/orderstream/orderstream/producer/command"
	"github.com/orderstream/orderstream/producer/csvimport"
	"github.com/orderstream/orderstream/producer/order"
	"github.com/orderstream/orderstream/producer/store"
	"github.com/orderstream/orderstream/schemas"
	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"
	"golang.org/x/term"
)

// importFileError names FILE and why it cannot be read: "import FILE: no
// such file or directory".
func importFileError(path string, err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		err = pe.Err
	}
	return fmt.Errorf("import %s: %w", path, err)
}

// importOptions are the flags of `orderstream import`.
type importOptions struct {
	workers      int
	asyncCommit  bool
	progress     string
	retryTimeout time.Duration
}

func newImportCmd(g *globals) *cobra.Command {
	opts := importOptions{}
	cmd := &cobra.Command{
		Use:   "import FILE",
		Short: "Import an Online Retail CSV (or .csv.gz) as orders through the write side",
		Long: `Reads FILE (CSV in the format of the UCI "Online Retail" data set, plain or
gzip-compressed) and turns every document (InvoiceNo) into one order through the
write side: the order aggregate decides and the repository saves the order, its
lines and its outbox events in one transaction per document. Sales are placed
and paid, credit notes (C…) placed and refunded, adjustments (A…) placed only.

Migrations are applied first, so a fresh database works. Re-running adds nothing:
documents already imported (same InvoiceNo) are counted as already present.

A malformed row (CSV syntax such as a quote never closed, invalid UTF-8, a bad
number or date, a missing column, a value outside the range every read model
stores exactly) is reported as FILE:LINE: column NAME: what is wrong, quoting at
most 40 characters of the value; the document it belongs to is refused whole (one
document is one transaction), all others are imported, and the command exits 1
with the numbers of bad rows and refused documents. A document PostgreSQL refuses
(a data exception) is reported the same way. A lost connection, a server
restarting or a serialization failure is retried per document for up to
--retry-timeout; a document committed just before the connection dropped is
found by the retry and counted once.`,
		Example: `  orderstream import ../shared/data/online_retail.csv.gz
  orderstream import --workers 8 orders.csv`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runImport(cmd.Context(), g, opts, args[0], cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	f := cmd.Flags()
	f.IntVar(&opts.workers, "workers", csvimport.DefaultWorkers, "documents saved concurrently (one transaction and connection each), 1-256")
	f.BoolVar(&opts.asyncCommit, "async-commit", false, "SET synchronous_commit = off on the import's connections (faster; a Postgres crash may lose the last commits, which a re-run restores)")
	f.StringVar(&opts.progress, "progress", "auto", "progress bar on stderr: auto (when stderr is a terminal), always, never")
	f.DurationVar(&opts.retryTimeout, "retry-timeout", csvimport.DefaultRetryTimeout, "how long one document is retried after transient database errors (connection lost, server restarting) before the import stops")
	return cmd
}

func runImport(ctx context.Context, g *globals, opts importOptions, path string, stdout, stderr io.Writer) error {
	if opts.workers < 1 || opts.workers > 256 {
		return usagef("--workers %d: want 1 to 256", opts.workers)
	}
	if opts.retryTimeout <= 0 || opts.retryTimeout > 24*time.Hour {
		return usagef("--retry-timeout %s: want more than 0 and at most 24h", opts.retryTimeout)
	}
	if err := g.checkEventVersion(); err != nil {
		return err
	}
	if _, set := os.LookupEnv("GOGC"); !set {
		defer debug.SetGCPercent(debug.SetGCPercent(csvimport.GCPercent))
	}
	showBar := false
	switch opts.progress {
	case "auto":
		f, ok := stderr.(*os.File)
		showBar = ok && term.IsTerminal(int(f.Fd()))
	case "always":
		showBar = true
	case "never":
	default:
		return usagef("--progress %q: want auto, always or never", opts.progress)
	}

	// Read twice as a stream (csvimport.Stream): open it now so that a
	// missing or unreadable file fails before anything is connected. It is
	// a runtime failure (exit 1), not a usage error: the command line was
	// well formed, the file was not there to read.
	file, err := os.Open(path)
	if err != nil {
		return importFileError(path, err)
	}
	file.Close()

	pgURL, err := g.pgURL()
	if err != nil {
		return err
	}
	pcfg, err := pgxpool.ParseConfig(pgURL)
	if err != nil {
		return usagef("--pg-url: %v", err)
	}
	// One connection per worker plus one spare for migrations and retries.
	pcfg.MaxConns = int32(opts.workers + 1)
	if opts.asyncCommit {
		// Safe here: a commit lost in a Postgres crash loses whole
		// transactions only (never half a document), the logical relay
		// streams only WAL flushed to disk, and the import is idempotent,
		// so a re-run saves exactly the lost documents.
		pcfg.ConnConfig.RuntimeParams["synchronous_commit"] = "off"
	}
	pool, err := pgxpool.NewWithConfig(ctx, pcfg)
	if err != nil {
		return fmt.Errorf("--pg-url: %w", err)
	}
	defer pool.Close()
	if _, err := store.Migrate(ctx, pool, g.log); err != nil {
		return err
	}
	validator, err := schemas.NewValidator()
	if err != nil {
		return err
	}

	var bar *progressbar.ProgressBar
	var iopts []csvimport.Option
	iopts = append(iopts, csvimport.WithLogger(g.log))
	if showBar {
		bar = progressbar.NewOptions(-1, // the number of documents is known at the end
			progressbar.OptionSetWriter(stderr),
			progressbar.OptionSetDescription("importing"),
			progressbar.OptionShowCount(),
			progressbar.OptionShowIts(),
			progressbar.OptionSetItsString("docs"),
			progressbar.OptionThrottle(100*time.Millisecond),
			progressbar.OptionClearOnFinish(),
		)
		iopts = append(iopts, csvimport.WithProgress(func(csvimport.Document) { _ = bar.Add(1) }))
	}
	handler := command.NewHandler(store.NewRepository(pool, validator, store.WithEventVersion(g.eventVersion)), store.IsConflict)
	im, err := csvimport.New(csvimport.Config{Workers: opts.workers, RetryTimeout: opts.retryTimeout}, handler, iopts...)
	if err != nil {
		return usagef("%v", err)
	}
	sum, st, err := im.ImportStream(ctx, csvimport.FileSource(path))
	g.log.Info("file read", "file", path, "rows", st.Rows, "documents", st.Documents, "bad_rows", st.BadRows)
	if err != nil && sum.Documents == 0 && !errors.Is(err, context.Canceled) {
		return fmt.Errorf("%s: %w", path, err) // nothing read: the file's header, gzip or I/O
	}
	if bar != nil {
		_ = bar.Finish()
	}
	for _, p := range sum.Problems {
		if len(p.Rows) == 0 {
			reason := p.Err
			var re *order.RuleError
			if errors.As(p.Err, &re) {
				reason = re // Build's wrapping repeats the document and line this line already names
			}
			fmt.Fprintf(stderr, "%s:%d: document %s not imported: %v\n", path, p.FirstLine, p.Number, reason)
			continue
		}
		for _, r := range p.Rows {
			fmt.Fprintf(stderr, "%s:%d: %s\n", path, r.Line, r.Detail())
		}
	}
	fmt.Fprintf(stdout, "%s: %d documents: %d imported, %d already present, %d refused (%d malformed rows, %d other rows of refused documents); %d events, %d lines written in %.1f s (%.0f documents/s, %d retries)\n",
		path, sum.Documents, sum.Imported, sum.Present, sum.Failed, sum.BadRows, sum.RefusedLines(), sum.Events, sum.Lines,
		sum.Duration.Seconds(), sum.DocumentsPerSecond(), sum.Retries)
	if err != nil {
		return err
	}
	if sum.Failed > 0 {
		return &importFailed{badRows: sum.BadRows, docs: sum.Failed}
	}
	return nil
}

// importFailed reports documents that were not imported because of their
// content (exit status 1).
type importFailed struct{ badRows, docs int }

func (e *importFailed) Error() string {
	return fmt.Sprintf("import: %d malformed rows, %d documents refused (see the lines above)", e.badRows, e.docs)
}
