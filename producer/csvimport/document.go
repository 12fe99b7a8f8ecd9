package csvimport

import (
	"bufio"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/orderstream/orderstream/schemas"
	"github.com/shopspring/decimal"
)

// Columns is the header row the importer expects, in this order.
var Columns = []string{"InvoiceNo", "StockCode", "Description", "Quantity", "InvoiceDate", "UnitPrice", "CustomerID", "Country"}

const (
	colInvoice = iota
	colStock
	colDescription
	colQuantity
	colDate
	colPrice
	colCustomer
	colCountry
)

// DateLayout is the layout of InvoiceDate (Europe/London wall-clock time).
const DateLayout = "2006-01-02 15:04:05"

var (
	invoicePattern = regexp.MustCompile(`^[CA]?[0-9]{6}$`)
	pricePattern   = regexp.MustCompile(`^-?[0-9]+(\.[0-9]+)?$`)
	digitsPattern  = regexp.MustCompile(`^[0-9]+$`)
)

// ExcerptLen is the most characters of a value a RowError quotes.
const ExcerptLen = 40

// Document is one source document (all rows of one InvoiceNo).
//
// Kind follows the number: 6 digits = sale, "C" + 6 digits = credit note,
// "A" + 6 digits = adjustment. CustomerID is empty for guest documents.
// PlacedAt is the earliest InvoiceDate of its lines, in UTC. Lines are in
// file order with LineNo 1..n and SourceLine set; every amount is GBP.
// FirstLine is the file line of its first row. Errs lists its malformed
// rows; a document with errors is not imported (Events refuses it).
type Document struct {
	Number     string
	Kind       schemas.Kind
	CustomerID string
	Country    string
	PlacedAt   time.Time
	Lines      []schemas.Line
	FirstLine  int
	Errs       []*RowError

	headLine   int   // line that set Kind, CustomerID and Country; 0 = none yet
	totalMilli int64 // running total of Lines, in thousandths
}

// Err returns the document's row errors joined, or nil.
func (d Document) Err() error {
	if len(d.Errs) == 0 {
		return nil
	}
	errs := make([]error, len(d.Errs))
	for i, e := range d.Errs {
		errs[i] = e
	}
	return errors.Join(errs...)
}

// Total returns Σ quantity × unit price over the lines, exact, in GBP.
func (d Document) Total() decimal.Decimal {
	t := decimal.Zero
	for _, l := range d.Lines {
		t = t.Add(l.UnitPrice.Amount.Mul(decimal.NewFromInt(l.Quantity)))
	}
	return t
}

// RowError is a malformed row: Line is its line in the file (header = 1),
// Column the column's header name ("" when the row as a whole is wrong, e.g.
// it has too many columns), Value the start of the text found — at most
// ExcerptLen characters, then "…" — and Problem what is wrong with it.
type RowError struct {
	Line    int
	Column  string
	Value   string
	Problem string
}

// Error formats e as `line 1234: column Quantity: "abc" is not an integer`.
func (e *RowError) Error() string { return fmt.Sprintf("line %d: %s", e.Line, e.Detail()) }

// Detail is the error without the line: `column Quantity: "abc" is not an
// integer`, for messages of the form file:line: detail. The value is quoted
// with Go escapes (invalid UTF-8 as \xff); an empty value is not quoted.
func (e *RowError) Detail() string {
	switch {
	case e.Column == "":
		return e.Problem
	case e.Value == "":
		return fmt.Sprintf("column %s: %s", e.Column, e.Problem)
	}
	return fmt.Sprintf("column %s: %q %s", e.Column, e.Value, e.Problem)
}

// excerpt returns the first ExcerptLen characters of s (an invalid byte
// counts as one), followed by "…" when s is longer, as a copy.
func excerpt(s string) string {
	if len(s) <= ExcerptLen {
		return strings.Clone(s)
	}
	n := 0
	for i := range s {
		if n == ExcerptLen {
			return s[:i] + "…"
		}
		n++
	}
	return strings.Clone(s)
}

// ErrHeader is returned when the first row is not the expected header.
var ErrHeader = errors.New("not an Online Retail CSV header")

// Stats describes what ReadDocuments read.
type Stats struct {
	Rows      int // data rows, header excluded
	Documents int
	BadRows   int // rows with at least one RowError
}

// ReadDocuments reads the CSV (plain or gzip) from r and calls fn once per
// document, in the order of each document's first row, after the whole input
// was read (a document's rows need not be contiguous). Documents with
// malformed rows are passed on too, with Errs set; rows whose InvoiceNo is
// unusable (or could not be read) form a document of that (bad) number.
// A malformed row never stops the reading: CSV syntax errors (a stray quote,
// a quote never closed) cost their row only — see recordReader.
//
// It returns an error, and calls fn for nothing, when the input cannot be
// read (I/O, broken gzip) or the header is wrong (ErrHeader); it stops at
// fn's first error and returns it.
func ReadDocuments(r io.Reader, fn func(Document) error) error {
	docs, _, err := read(r)
	if err != nil {
		return err
	}
	for _, d := range docs {
		if err := fn(*d); err != nil {
			return err
		}
	}
	return nil
}

// Collect reads every document of r (see ReadDocuments) into memory; about
// 250 bytes per line (the real file: ~130 MiB).
func Collect(r io.Reader) ([]Document, Stats, error) {
	docs, st, err := read(r)
	if err != nil {
		return nil, st, err
	}
	out := make([]Document, len(docs))
	for i, d := range docs {
		out[i] = *d
	}
	return out, st, nil
}

// Decompress returns r itself, or a gzip reader on it when it starts with
// the gzip magic bytes 1f 8b.
func Decompress(r io.Reader) (io.Reader, error) {
	br := bufio.NewReaderSize(r, 1<<16)
	magic, err := br.Peek(2)
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("read input: %w", err)
	}
	if len(magic) == 2 && magic[0] == 0x1f && magic[1] == 0x8b {
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, fmt.Errorf("gzip: %w", readError(err, true))
		}
		return zr, nil
	}
	return br, nil
}

func read(r io.Reader) ([]*Document, Stats, error) {
	var st Stats
	rr, gz, err := openRecords(r)
	if err != nil {
		return nil, st, err
	}
	p := newParser()
	last := 1 // line of the last row read
	for {
		rec, line, se, err := nextRecord(rr, gz, last)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, st, err
		}
		last = line
		st.Rows++
		p.row(p.doc(rec, line), line, rec, se)
	}
	st.Documents = len(p.docs)
	st.BadRows = p.badRows
	return p.docs, st, nil
}

// openRecords opens the CSV (plain or gzip) of r and reads its header.
// gz tells whether the input is gzip.
func openRecords(r io.Reader) (rr *recordReader, gz bool, err error) {
	in, err := Decompress(r)
	if err != nil {
		return nil, false, err
	}
	_, gz = in.(*gzip.Reader)
	rr = newRecordReader(in, len(Columns))
	header, _, err := rr.Read()
	if err != nil {
		if errors.Is(err, io.EOF) {
			return nil, gz, fmt.Errorf("%w: the input is empty", ErrHeader)
		}
		return nil, gz, fmt.Errorf("line 1: %w: %v", ErrHeader, readError(err, gz))
	}
	if len(header) > 0 {
		header[0] = strings.TrimPrefix(header[0], "\uFEFF")
	}
	if got := strings.Join(header, ","); got != strings.Join(Columns, ",") {
		return nil, gz, fmt.Errorf("line 1: %w: got %q, want %q", ErrHeader, excerpt(got), strings.Join(Columns, ","))
	}
	return rr, gz, nil
}

// nextRecord returns the next record, the line it starts on and its syntax
// error (nil when well formed); io.EOF at the end; a read error names the
// line after which it happened (last).
func nextRecord(rr *recordReader, gz bool, last int) ([]string, int, *syntaxError, error) {
	rec, line, err := rr.Read()
	if errors.Is(err, io.EOF) {
		return nil, line, nil, io.EOF
	}
	var se *syntaxError
	if err != nil && !errors.As(err, &se) {
		return nil, line, nil, fmt.Errorf("read CSV after line %d: %w", last, readError(err, gz))
	}
	return rec, line, se, nil
}

// numberOf returns the InvoiceNo of a record as read ("" when none was).
func numberOf(rec []string) string {
	if len(rec) > 0 {
		return rec[colInvoice]
	}
	return ""
}

// readError explains an input error: a gzip stream that stops early is a
// truncated file, a checksum mismatch a corrupt one.
func readError(err error, gz bool) error {
	switch {
	case gz && errors.Is(err, io.ErrUnexpectedEOF):
		return fmt.Errorf("the gzip stream ends early: the file is truncated (%w)", err)
	case gz && (errors.Is(err, gzip.ErrChecksum) || errors.Is(err, gzip.ErrHeader)):
		return fmt.Errorf("the gzip stream is corrupt (%w)", err)
	}
	return err
}

// parser groups rows into documents and caches the repetitive parts of the
// input (dates, descriptions) to keep parsing and memory cheap.
//
// Memory: the documents not handed on yet, plus the caches, each cleared
// when it reaches maxCached entries (so a stream of any length holds them
// bounded).
type parser struct {
	london  *time.Location
	docs    []*Document // every document, when kept (read)
	byNum   map[string]*Document
	dates   map[string]time.Time
	strs    map[string]string
	badRows int  // rows with at least one problem
	rowBad  bool // the current row has a problem
}

// maxCached bounds each cache of the parser (dates, interned strings).
const maxCached = 1 << 14

func newParser() *parser {
	london, err := time.LoadLocation("Europe/London")
	if err != nil {
		// Without tzdata no InvoiceDate can be converted; every row reports it.
		london = nil
	}
	return &parser{london: london, byNum: map[string]*Document{}, dates: map[string]time.Time{},
		strs: map[string]string{}}
}

func (p *parser) intern(s string) string {
	if v, ok := p.strs[s]; ok {
		return v
	}
	if len(p.strs) >= maxCached {
		clear(p.strs)
	}
	s = strings.Clone(s)
	p.strs[s] = s
	return s
}

// doc returns the document of record rec (first read on line), created if
// new.
func (p *parser) doc(rec []string, line int) *Document {
	number := numberOf(rec)
	d, ok := p.byNum[number]
	if !ok {
		number = strings.Clone(number)
		d = &Document{Number: number, FirstLine: line}
		p.byNum[number] = d
		p.docs = append(p.docs, d)
	}
	return d
}

// row adds one record (read from line, se its syntax error or nil) to its
// document d, or a RowError for each problem of the row.
func (p *parser) row(d *Document, line int, rec []string, se *syntaxError) {
	number := d.Number
	p.rowBad = false
	bad := func(col int, value, problem string) {
		e := &RowError{Line: line, Problem: problem}
		if col >= 0 {
			e.Column, e.Value = Columns[col], excerpt(value)
		}
		d.Errs = append(d.Errs, e)
		if !p.rowBad {
			p.badRows++
		}
		p.rowBad = true
	}
	switch {
	case se != nil:
		col := se.Field
		if col >= len(Columns) {
			col = -1
		}
		bad(col, se.Text, se.Problem)
		return
	case len(rec) < len(Columns):
		bad(len(rec), "", fmt.Sprintf("is missing: the row has %d columns, want %d (%s)", len(rec), len(Columns), strings.Join(Columns, ",")))
		return
	case len(rec) > len(Columns):
		bad(-1, "", fmt.Sprintf("%d columns, want %d (%s)", len(rec), len(Columns), strings.Join(Columns, ",")))
		return
	}
	text := func(col, max int, check func(string, int) error) {
		var re *schemas.RangeError
		if err := check(rec[col], max); errors.As(err, &re) {
			bad(col, rec[col], re.Problem)
		}
	}

	kind, ok := kindOf(number)
	if !ok {
		bad(colInvoice, number, "is not a document number: want 6 digits (sale), C + 6 digits (credit note) or A + 6 digits (adjustment)")
	}
	stock := rec[colStock]
	if stock == "" {
		bad(colStock, "", fmt.Sprintf("is empty: want 1 to %d characters", schemas.MaxStockCode))
	} else {
		text(colStock, schemas.MaxStockCode, schemas.CheckKey)
	}
	text(colDescription, schemas.MaxDescription, schemas.CheckText)
	qty, err := strconv.ParseInt(rec[colQuantity], 10, 64)
	var re *schemas.RangeError
	if err != nil && !errors.Is(err, strconv.ErrRange) {
		bad(colQuantity, rec[colQuantity], "is not an integer")
	} else if schemas.CheckQuantity(qty) != nil { // ErrRange: beyond int64, beyond the bound too
		bad(colQuantity, rec[colQuantity], fmt.Sprintf("is beyond ±%d (schemas.MaxQuantity)", schemas.MaxQuantity))
	}
	at, problem := p.date(rec[colDate])
	if problem != "" {
		bad(colDate, rec[colDate], problem)
	}
	var price decimal.Decimal
	var priceMilli int64
	priceOK := false
	if !pricePattern.MatchString(rec[colPrice]) {
		bad(colPrice, rec[colPrice], "is not a price in GBP (a decimal number with at most 3 decimals, e.g. 2.55)")
	} else if price, err = decimal.NewFromString(rec[colPrice]); err != nil {
		bad(colPrice, rec[colPrice], "is not a decimal number")
	} else if priceMilli, err = schemas.AmountMilli(price); errors.As(err, &re) {
		bad(colPrice, rec[colPrice], "is not a price in GBP: "+re.Problem+" (schemas.MoneyScale, MaxAmountMilli)")
	} else {
		priceOK = true
	}
	customer := rec[colCustomer]
	if customer != "" && (!digitsPattern.MatchString(customer) || len(customer) > schemas.MaxCustomerID) {
		bad(colCustomer, customer, fmt.Sprintf("is not a customer number (1 to %d digits) nor empty (guest)", schemas.MaxCustomerID))
	}
	country := rec[colCountry]
	if country == "" {
		bad(colCountry, "", fmt.Sprintf("is empty: want 1 to %d characters", schemas.MaxCountry))
	} else {
		text(colCountry, schemas.MaxCountry, schemas.CheckKey)
	}

	if d.headLine == 0 {
		d.Kind, d.CustomerID, d.Country, d.headLine = kind, p.intern(customer), p.intern(country), line
	} else {
		if customer != d.CustomerID {
			bad(colCustomer, customer, fmt.Sprintf("differs from %q on line %d of the same document", d.CustomerID, d.headLine))
		}
		if country != d.Country {
			bad(colCountry, country, fmt.Sprintf("differs from %q on line %d of the same document", excerpt(d.Country), d.headLine))
		}
	}
	if priceOK && !p.rowBad {
		amount, err := schemas.LineAmountMilli(qty, priceMilli)
		if err == nil {
			if d.totalMilli, err = schemas.AddMilli(d.totalMilli, amount); err != nil {
				bad(colPrice, rec[colPrice], fmt.Sprintf("× Quantity %d brings the running total of document %s beyond ±%s GBP (schemas.MaxAmountMilli)",
					qty, excerpt(number), schemas.MaxAmount()))
			}
		} else {
			bad(colPrice, rec[colPrice], fmt.Sprintf("× Quantity %d is beyond ±%s GBP, the largest line amount (schemas.MaxAmountMilli)", qty, schemas.MaxAmount()))
		}
	}
	if len(d.Lines) == schemas.MaxLines && !p.rowBad {
		bad(colInvoice, number, fmt.Sprintf("has more than %d lines (schemas.MaxLines)", schemas.MaxLines))
	}
	if p.rowBad {
		return
	}
	if d.PlacedAt.IsZero() || at.Before(d.PlacedAt) {
		d.PlacedAt = at
	}
	d.Lines = append(d.Lines, schemas.Line{
		LineNo:      len(d.Lines) + 1,
		SourceLine:  line,
		StockCode:   p.intern(stock),
		Description: p.intern(rec[colDescription]),
		Quantity:    qty,
		UnitPrice:   schemas.Money{Amount: price, Currency: schemas.CurrencyGBP},
		InvoicedAt:  at,
	})
}

// date parses an InvoiceDate as Europe/London wall-clock time and returns
// it in UTC, or a problem. In the autumn hour that occurs twice (2011-10-30
// 01:00–01:59 is 00:00–00:59 UTC in BST and again 01:00–01:59 UTC in GMT)
// the first (BST) instant is taken, as RFC 5545 (iCalendar, §3.3.5) and
// java.time do for an overlap: nothing in the data set tells the two
// apart, its README only says "treat as Europe/London", and time.Date
// leaves the choice unspecified (Go takes the second). A time in the spring
// gap (2011-03-27 01:30) does not exist and is read with the offset before
// the gap (GMT), i.e. moved forward by an hour, as RFC 5545 says too. The
// real file has no line in either hour. Outside MinTime..MaxTime it is a
// problem too.
func (p *parser) date(s string) (time.Time, string) {
	if t, ok := p.dates[s]; ok {
		return t, ""
	}
	const bad = "is not a date " + DateLayout + " (Europe/London)"
	if p.london == nil {
		return time.Time{}, bad + ": no time zone database for Europe/London"
	}
	t, err := time.ParseInLocation(DateLayout, s, p.london)
	if err != nil {
		return time.Time{}, bad
	}
	t = firstOccurrence(t).UTC()
	var re *schemas.RangeError
	if errors.As(schemas.CheckTime(t), &re) {
		return time.Time{}, re.Problem + " (schemas.MinTimeUnix, MaxTimeUnix)"
	}
	if len(p.dates) >= maxCached {
		clear(p.dates)
	}
	p.dates[strings.Clone(s)] = t
	return t, ""
}

// firstOccurrence returns the first instant that has t's wall-clock time in
// t's location: t itself, or t minus the clock's step back when t lies in
// the repeated hour after a backward transition.
func firstOccurrence(t time.Time) time.Time {
	start, _ := t.ZoneBounds()
	if start.IsZero() {
		return t
	}
	_, cur := t.Zone()
	_, prev := start.Add(-time.Second).Zone()
	if step := time.Duration(prev-cur) * time.Second; step > 0 && t.Sub(start) < step {
		return t.Add(-step)
	}
	return t
}

// kindOf returns the kind a document number denotes, or false for a number
// of no known form.
func kindOf(number string) (schemas.Kind, bool) {
	if !invoicePattern.MatchString(number) {
		return "", false
	}
	switch number[0] {
	case 'C':
		return schemas.KindCreditNote, true
	case 'A':
		return schemas.KindAdjustment, true
	}
	return schemas.KindSale, true
}
