// Package csvimport reads documents of the UCI "Online Retail" data set
// (CSV, plain or gzip) and imports each one as an order through the write
// side: command.Handler.Place runs the order aggregate's decisions and
// store.Repository saves.
//
// Reading (Stream for the import; ReadDocuments, Collect for tests):
//   - The file has a header row InvoiceNo,StockCode,Description,Quantity,
//     InvoiceDate,UnitPrice,CustomerID,Country and RFC 4180 quoting (a quoted
//     field may span up to 16 lines). Gzip input is recognised by its magic
//     bytes, whatever the file name.
//   - Lines are grouped by InvoiceNo into one Document. The real file keeps a
//     document's lines together except for one (542806, interleaved with
//     C542805). Stream reads the file twice: an index pass finds the
//     documents split by others (spilling its index to temporary files), the
//     import pass hands each document on at the end of its last run, so
//     memory does not grow with the file. ReadDocuments and Collect hold the
//     whole file and hand documents on in the order of their first row.
//   - Every line is kept, exact repeats included, with its file line number
//     (header = line 1) as schemas.Line.SourceLine.
//   - InvoiceDate is Europe/London wall-clock time and is converted to UTC;
//     the repeated autumn hour is taken at its first (BST) occurrence, a time
//     in the spring gap is moved forward an hour (RFC 5545). A document is
//     placed at its earliest line's InvoiceDate.
//   - A malformed row is reported as a *RowError naming its line and column
//     and quoting at most ExcerptLen characters of the value: CSV syntax (a
//     stray quote, a quote never closed — it costs its own line, not the
//     rest of the file), invalid UTF-8 or NUL, a bad number or date, a
//     missing column, a value outside the event contract's range
//     (schemas/limits.go: money, quantity, line amount, running total,
//     times, text lengths). Reading never stops for a row; the document it
//     belongs to carries the error and is refused whole (one document is one
//     transaction).
//
// Importing (Importer):
//   - One order per document, id = OrderID(InvoiceNo) (UUIDv5, stable across
//     runs), saved with its lines and outbox events in one transaction.
//     Sales are placed and paid, credit notes placed and refunded,
//     adjustments placed only.
//   - Re-running an import adds nothing: a document whose number exists is
//     counted as already imported.
//   - A document refused by its rows, the aggregate or PostgreSQL (a data
//     exception) is counted and listed; the others go on. Transient database
//     errors (store.Classify) are retried per document for up to
//     Config.RetryTimeout; a retry that finds the document written by its
//     own earlier attempt (connection lost at COMMIT) counts it as imported,
//     and it is never written twice (the order id and number are unique).
//   - Documents are independent, so workers save them concurrently (16 by
//     default: PostgreSQL flushes the commits in flight with one WAL fsync);
//     the order in which documents commit is not the file order.
//   - A new order is written in one statement (store: one round trip, one
//     transaction); every event is validated against its contract first
//     (schemas.Validator: a token walk over the compiled schemas, the JSON
//     Schema library when that walk is unsure).
package csvimport
