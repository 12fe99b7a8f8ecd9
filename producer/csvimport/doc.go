// Package csvimport reads documents of the UCI "Online Retail" data set
// (CSV, plain or gzip) and imports each one as an order through the write
// side: the order aggregate decides, store.Repository saves.
//
// Reading (ReadDocuments, Collect):
//   - The file has a header row InvoiceNo,StockCode,Description,Quantity,
//     InvoiceDate,UnitPrice,CustomerID,Country and RFC 4180 quoting (a quoted
//     field may span up to 16 lines). Gzip input is recognised by its magic
//     bytes, whatever the file name.
//   - Lines are grouped by InvoiceNo into one Document. The real file keeps a
//     document's lines together except for one (542806, interleaved with
//     C542805), so grouping is done over the whole file: a document is handed
//     on only after the last row was read. Documents come in the order of
//     their first row.
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
//   - Documents are independent, so workers save them concurrently; the order
//     in which documents commit is not the file order.
package csvimport
