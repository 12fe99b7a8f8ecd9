package csvimport

import (
	"bufio"
	"compress/gzip"
	"encoding/csv"
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

// Limits of the event schemas (schemas/v1/defs.json, order.placed.json).
const (
	maxStockCode   = 64
	maxDescription = 512
	maxCountry     = 64
	maxCustomer    = 64
)

var (
	invoicePattern = regexp.MustCompile(`^[CA]?[0-9]{6}$`)
	pricePattern   = regexp.MustCompile(`^-?[0-9]{1,12}(\.[0-9]{1,3})?$`)
	digitsPattern  = regexp.MustCompile(`^[0-9]+$`)
)

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

	headLine int // line that set Kind, CustomerID and Country; 0 = none yet
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
// its number of columns), Value the text found and Problem what is wrong
// with it.
type RowError struct {
	Line    int
	Column  string
	Value   string
	Problem string
}

// Error formats e as `line 1234: column Quantity: "abc" is not an integer`.
func (e *RowError) Error() string { return fmt.Sprintf("line %d: %s", e.Line, e.Detail()) }

// Detail is the error without the line: `column Quantity: "abc" is not an
// integer`, for messages of the form file:line: detail.
func (e *RowError) Detail() string {
	if e.Column == "" {
		return e.Problem
	}
	return fmt.Sprintf("column %s: %q %s", e.Column, e.Value, e.Problem)
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
// unusable form a document of that (bad) number.
//
// It returns an error, and calls fn for nothing, when the input cannot be
// read (I/O, broken gzip, CSV syntax such as a stray quote, whose row cannot
// be attributed to a document) or the header is wrong (ErrHeader); it stops
// at fn's first error and returns it.
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
	in, err := Decompress(r)
	if err != nil {
		return nil, st, err
	}
	_, gz := in.(*gzip.Reader)
	cr := csv.NewReader(in)
	cr.FieldsPerRecord = len(Columns)
	cr.ReuseRecord = true
	header, err := cr.Read()
	if err != nil {
		if errors.Is(err, io.EOF) {
			return nil, st, fmt.Errorf("%w: the input is empty", ErrHeader)
		}
		return nil, st, fmt.Errorf("line 1: %w: %v", ErrHeader, readError(err, gz))
	}
	if len(header) > 0 {
		header[0] = strings.TrimPrefix(header[0], "\uFEFF")
	}
	if strings.Join(header, ",") != strings.Join(Columns, ",") {
		return nil, st, fmt.Errorf("line 1: %w: got %q, want %q", ErrHeader, strings.Join(header, ","), strings.Join(Columns, ","))
	}
	p := newParser()
	last := 1 // line of the last row read
	for {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		var pe *csv.ParseError
		if err != nil && !(errors.As(err, &pe) && errors.Is(pe.Err, csv.ErrFieldCount)) {
			if pe != nil {
				return nil, st, fmt.Errorf("read CSV: %w", err) // names line and column
			}
			return nil, st, fmt.Errorf("read CSV after line %d: %w", last, readError(err, gz))
		}
		line, _ := cr.FieldPos(0)
		last = line
		st.Rows++
		p.row(line, rec)
	}
	st.Documents = len(p.docs)
	st.BadRows = len(p.badRows)
	return p.docs, st, nil
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
type parser struct {
	london  *time.Location
	docs    []*Document
	byNum   map[string]*Document
	dates   map[string]time.Time
	strs    map[string]string
	badRows map[int]bool
}

func newParser() *parser {
	london, err := time.LoadLocation("Europe/London")
	if err != nil {
		// Without tzdata no InvoiceDate can be converted; every row reports it.
		london = nil
	}
	return &parser{london: london, byNum: map[string]*Document{}, dates: map[string]time.Time{},
		strs: map[string]string{}, badRows: map[int]bool{}}
}

func (p *parser) intern(s string) string {
	if v, ok := p.strs[s]; ok {
		return v
	}
	s = strings.Clone(s)
	p.strs[s] = s
	return s
}

func (p *parser) row(line int, rec []string) {
	number := ""
	if len(rec) > 0 {
		number = rec[colInvoice]
	}
	d, ok := p.byNum[number]
	if !ok {
		number = strings.Clone(number)
		d = &Document{Number: number, FirstLine: line}
		p.byNum[number] = d
		p.docs = append(p.docs, d)
	}
	bad := func(col int, problem string) {
		e := &RowError{Line: line, Problem: problem}
		if col >= 0 {
			e.Column, e.Value = Columns[col], strings.Clone(rec[col])
		}
		d.Errs = append(d.Errs, e)
		p.badRows[line] = true
	}
	if len(rec) != len(Columns) {
		bad(-1, fmt.Sprintf("%d columns, want %d (%s)", len(rec), len(Columns), strings.Join(Columns, ",")))
		return
	}

	kind, ok := kindOf(number)
	if !ok {
		bad(colInvoice, "is not a document number: want 6 digits (sale), C + 6 digits (credit note) or A + 6 digits (adjustment)")
	}
	stock := rec[colStock]
	if stock == "" || len(stock) > maxStockCode {
		bad(colStock, fmt.Sprintf("must have 1 to %d characters", maxStockCode))
	}
	if len(rec[colDescription]) > maxDescription {
		bad(colDescription, fmt.Sprintf("is longer than %d characters", maxDescription))
	}
	qty, err := strconv.ParseInt(rec[colQuantity], 10, 64)
	if err != nil {
		bad(colQuantity, "is not an integer")
	}
	at, ok := p.date(rec[colDate])
	if !ok {
		bad(colDate, "is not a date "+DateLayout+" (Europe/London)")
	}
	var price decimal.Decimal
	if !pricePattern.MatchString(rec[colPrice]) {
		bad(colPrice, "is not a price in GBP with at most 3 decimals (e.g. 2.55)")
	} else if price, err = decimal.NewFromString(rec[colPrice]); err != nil {
		bad(colPrice, "is not a decimal number")
	}
	customer := rec[colCustomer]
	if customer != "" && (!digitsPattern.MatchString(customer) || len(customer) > maxCustomer) {
		bad(colCustomer, "is not a customer number (digits) nor empty (guest)")
	}
	country := rec[colCountry]
	if country == "" || len(country) > maxCountry {
		bad(colCountry, fmt.Sprintf("must have 1 to %d characters", maxCountry))
	}

	if d.headLine == 0 {
		d.Kind, d.CustomerID, d.Country, d.headLine = kind, p.intern(customer), p.intern(country), line
	} else {
		if customer != d.CustomerID {
			bad(colCustomer, fmt.Sprintf("differs from %q on line %d of the same document", d.CustomerID, d.headLine))
		}
		if country != d.Country {
			bad(colCountry, fmt.Sprintf("differs from %q on line %d of the same document", d.Country, d.headLine))
		}
	}
	if p.badRows[line] {
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
// it in UTC. In the autumn hour that occurs twice the first (BST) instant is
// taken; a time in the spring gap is moved forward by an hour (time.Date).
func (p *parser) date(s string) (time.Time, bool) {
	if t, ok := p.dates[s]; ok {
		return t, true
	}
	if p.london == nil {
		return time.Time{}, false
	}
	t, err := time.ParseInLocation(DateLayout, s, p.london)
	if err != nil {
		return time.Time{}, false
	}
	t = t.UTC()
	p.dates[strings.Clone(s)] = t
	return t, true
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
