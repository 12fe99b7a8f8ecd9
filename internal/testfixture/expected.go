package testfixture

import (
	"compress/gzip"
	"encoding/csv"
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/orderstream/orderstream/schemas"
	"github.com/shopspring/decimal"
)

// Expected holds the figures a correct read model of the real file shows,
// computed straight from the CSV with encoding/csv and exact decimals,
// independently of producer/csvimport and the aggregate, so a test that
// compares with it checks the whole pipeline.
//
// Definitions used throughout:
//   - A document is all rows of one InvoiceNo (rows need not be
//     contiguous). Its kind: "C" prefix = credit_note, "A" prefix =
//     adjustment, otherwise sale. Its customer and country are those of its
//     rows (constant within a document in the real file).
//   - A line's amount is Quantity × UnitPrice, exact, in GBP. Every row is a
//     line, exact repeats included.
//   - A document's placed time is its earliest InvoiceDate, read as
//     Europe/London wall-clock time. Its day ("2006-01-02") and month
//     ("2006-01") are the Europe/London calendar day and month of that
//     instant (= the date written in the file). A document's lines all count
//     on that day, even if some rows have a later InvoiceDate.
//   - "Net" is over every line of every kind; "gross" over lines of sale
//     documents; "returns" over lines of credit notes (≤ 0); "adjustments"
//     over lines of adjustment documents. Net = Gross + Returns + Adjustments.
type Expected struct {
	// Total is the bucket of the whole file (Net = 9747747.934 GBP,
	// Documents = 25,900, Lines = 541,909, Customers = 4,372).
	Total Bucket
	// ByDay, ByMonth and ByCountry split Total by the document's
	// Europe/London day ("2006-01-02"), month ("2006-01") and country.
	ByDay     map[string]*Bucket
	ByMonth   map[string]*Bucket
	ByCountry map[string]*Bucket
	// DocumentsByCountryKind counts documents per country and kind (facets).
	DocumentsByCountryKind map[string]map[schemas.Kind]int
	// Events is the number of events the write side emits: 2 per sale
	// (placed, paid), 2 per credit note (placed, refunded), 1 per adjustment.
	Events int
	// Products maps a stock code to its totals over every line of every
	// kind (net). See TopByRevenue and TopByQuantity.
	Products map[string]*Product
	// Docs maps a document number (InvoiceNo) to its summary.
	Docs map[string]*Doc
}

// Bucket is one group of documents (the whole file, a day, a month or a
// country). Amounts are exact GBP.
type Bucket struct {
	Documents int                  // documents of every kind
	ByKind    map[schemas.Kind]int // documents per kind
	Orders    int                  // sale documents (= ByKind[sale])
	Lines     int                  // rows of the documents, repeats included
	Quantity  int64                // Σ Quantity over the lines (net of returns)
	Net       decimal.Decimal      // Σ amount over every line
	Gross     decimal.Decimal      // Σ amount over lines of sale documents
	Returns   decimal.Decimal      // Σ amount over lines of credit notes (≤ 0)
	Adjust    decimal.Decimal      // Σ amount over lines of adjustment documents
	// Customers counts distinct non-empty CustomerIDs of the bucket's
	// documents of every kind; Buyers only those of its sale documents.
	Customers int
	Buyers    int

	customers map[string]struct{}
	buyers    map[string]struct{}
}

// Product is the net total of one stock code over every line of every
// document kind.
type Product struct {
	StockCode string
	Net       decimal.Decimal // Σ amount, GBP
	Quantity  int64           // Σ Quantity (credit notes subtract)
	Lines     int             // rows with this code
	// Documents lists the numbers of the documents with at least one line of
	// this code, sorted ascending as strings.
	Documents []string
}

// Doc summarises one document.
type Doc struct {
	Number     string
	Kind       schemas.Kind
	CustomerID string // "" for guests
	Country    string
	PlacedAt   time.Time // earliest InvoiceDate, UTC
	Day        string    // Europe/London "2006-01-02" of PlacedAt
	Month      string    // Europe/London "2006-01"
	Lines      int
	Quantity   int64
	Total      decimal.Decimal // Σ amount of its lines, GBP
	FirstLine  int             // file line of its first row (header = 1)
}

// TopByRevenue returns the n products of highest Net, ties broken by stock
// code ascending (all of them when n ≤ 0 or larger than their number).
func (e *Expected) TopByRevenue(n int) []*Product {
	return e.top(n, func(a, b *Product) int { return b.Net.Cmp(a.Net) })
}

// TopByQuantity returns the n products of highest Quantity, ties broken by
// stock code ascending.
func (e *Expected) TopByQuantity(n int) []*Product {
	return e.top(n, func(a, b *Product) int {
		switch {
		case a.Quantity > b.Quantity:
			return -1
		case a.Quantity < b.Quantity:
			return 1
		}
		return 0
	})
}

func (e *Expected) top(n int, cmp func(a, b *Product) int) []*Product {
	all := make([]*Product, 0, len(e.Products))
	for _, p := range e.Products {
		all = append(all, p)
	}
	sort.Slice(all, func(i, j int) bool {
		if c := cmp(all[i], all[j]); c != 0 {
			return c < 0
		}
		return all[i].StockCode < all[j].StockCode
	})
	if n > 0 && n < len(all) {
		all = all[:n]
	}
	return all
}

var expected struct {
	once sync.Once
	exp  *Expected
	err  error
}

// ExpectedFromCSV returns the expected figures of the real file, computed
// once per test binary (about 2 s). Skips, or fails under CI=true, when the
// file is missing. The result is shared: do not modify it.
func ExpectedFromCSV(t testing.TB) *Expected {
	t.Helper()
	path := RealFile(t)
	expected.once.Do(func() {
		expected.exp, expected.err = ComputeExpected(path)
	})
	if expected.err != nil {
		t.Fatalf("expected figures of %s: %v", path, expected.err)
	}
	return expected.exp
}

// ComputeExpected computes Expected from the CSV (plain or .gz by name) at
// path.
func ComputeExpected(path string) (*Expected, error) {
	return ComputeExpectedCopies(path, 1)
}

// ComputeExpectedCopies computes the Expected of copies copies of the CSV at
// path as internal/scaledata generates them, from path itself by its own
// reading of that rule (not the generator's code): in copy k the 6 digits
// of a document number n become (n + k·W) mod 10⁶ behind the same prefix,
// W = max − min + 1 over the file's numbers, and every InvoiceDate is k
// years later in Europe/London wall-clock time. Copy 0 is the file itself;
// a row of copy k is on its line + k × (rows of the file) (one line a row).
// It holds every document in memory (about 120 bytes a line).
func ComputeExpectedCopies(path string, copies int) (*Expected, error) {
	open := func() (io.Reader, func() error, error) {
		f, err := os.Open(path)
		if err != nil {
			return nil, nil, err
		}
		if !strings.HasSuffix(path, ".gz") {
			return f, f.Close, nil
		}
		zr, err := gzip.NewReader(f)
		if err != nil {
			f.Close()
			return nil, nil, fmt.Errorf("%s: %w", path, err)
		}
		return zr, f.Close, nil
	}
	lo, hi, rows := 1_000_000, -1, 0
	if copies > 1 {
		err := eachRecord(open, func([]string, int) error { return nil }, func(rec []string, _ int) error {
			rows++
			n, err := strconv.Atoi(strings.TrimLeft(rec[0], "CA"))
			if err != nil {
				return fmt.Errorf("InvoiceNo %q: %w", rec[0], err)
			}
			lo, hi = min(lo, n), max(hi, n)
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	acc, err := newAccumulator()
	if err != nil {
		return nil, err
	}
	for k := range copies {
		err := eachRecord(open, func([]string, int) error { return nil }, func(rec []string, line int) error {
			number := rec[0]
			if k > 0 {
				digits := strings.TrimLeft(number, "CA")
				n, _ := strconv.Atoi(digits)
				number = number[:len(number)-len(digits)] + fmt.Sprintf("%06d", (n+k*(hi-lo+1))%1_000_000)
			}
			return acc.row(rec, line+k*rows, number, k)
		})
		if err != nil {
			return nil, err
		}
	}
	return acc.finish(), nil
}

// eachRecord reads the CSV open returns with encoding/csv, header first.
func eachRecord(open func() (io.Reader, func() error, error), header, fn func(rec []string, line int) error) error {
	r, closeFn, err := open()
	if err != nil {
		return err
	}
	defer closeFn()
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = 8
	rec, err := cr.Read()
	if err != nil {
		return fmt.Errorf("header: %w", err)
	}
	if err := header(rec, 1); err != nil {
		return err
	}
	for {
		rec, err := cr.Read()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		line, _ := cr.FieldPos(0)
		if err := fn(rec, line); err != nil {
			return err
		}
	}
}

type row struct {
	stock string
	qty   int64
	amt   decimal.Decimal
}

type docAcc struct {
	*Doc
	rows []row
}

// accumulator gathers documents row by row; finish computes the figures.
type accumulator struct {
	london *time.Location
	order  []*docAcc
	docs   map[string]*docAcc
}

func newAccumulator() (*accumulator, error) {
	london, err := time.LoadLocation("Europe/London")
	if err != nil {
		return nil, err
	}
	return &accumulator{london: london, docs: map[string]*docAcc{}}, nil
}

func computeExpected(r io.Reader) (*Expected, error) {
	acc, err := newAccumulator()
	if err != nil {
		return nil, err
	}
	open := func() (io.Reader, func() error, error) { return r, func() error { return nil }, nil }
	err = eachRecord(open, func([]string, int) error { return nil }, func(rec []string, line int) error {
		return acc.row(rec, line, rec[0], 0)
	})
	if err != nil {
		return nil, err
	}
	return acc.finish(), nil
}

// row adds one record, of document number, its InvoiceDate shifted by
// years.
func (a *accumulator) row(rec []string, line int, number string, years int) error {
	qty, err := strconv.ParseInt(rec[3], 10, 64)
	if err != nil {
		return fmt.Errorf("line %d: Quantity: %w", line, err)
	}
	at, err := time.ParseInLocation("2006-01-02 15:04:05", rec[4], a.london)
	if err != nil {
		return fmt.Errorf("line %d: InvoiceDate: %w", line, err)
	}
	if years != 0 {
		at = at.AddDate(years, 0, 0)
	}
	price, err := decimal.NewFromString(rec[5])
	if err != nil {
		return fmt.Errorf("line %d: UnitPrice: %w", line, err)
	}
	d, ok := a.docs[number]
	if !ok {
		kind := schemas.KindSale
		switch {
		case strings.HasPrefix(number, "C"):
			kind = schemas.KindCreditNote
		case strings.HasPrefix(number, "A"):
			kind = schemas.KindAdjustment
		}
		d = &docAcc{Doc: &Doc{Number: number, Kind: kind, CustomerID: rec[6], Country: rec[7], PlacedAt: at, FirstLine: line, Total: decimal.Zero}}
		a.docs[number] = d
		a.order = append(a.order, d)
	}
	if at.Before(d.PlacedAt) {
		d.PlacedAt = at
	}
	amt := price.Mul(decimal.NewFromInt(qty))
	d.rows = append(d.rows, row{stock: rec[1], qty: qty, amt: amt})
	d.Lines++
	d.Quantity += qty
	d.Total = d.Total.Add(amt)
	return nil
}

func (a *accumulator) finish() *Expected {
	london, order := a.london, a.order
	e := &Expected{
		Total:                  newBucket(),
		ByDay:                  map[string]*Bucket{},
		ByMonth:                map[string]*Bucket{},
		ByCountry:              map[string]*Bucket{},
		DocumentsByCountryKind: map[string]map[schemas.Kind]int{},
		Products:               map[string]*Product{},
		Docs:                   map[string]*Doc{},
	}
	bucket := func(m map[string]*Bucket, k string) *Bucket {
		b, ok := m[k]
		if !ok {
			nb := newBucket()
			b = &nb
			m[k] = b
		}
		return b
	}
	for _, d := range order {
		local := d.PlacedAt.In(london)
		d.Day, d.Month = local.Format("2006-01-02"), local.Format("2006-01")
		d.PlacedAt = d.PlacedAt.UTC()
		e.Docs[d.Number] = d.Doc
		if e.DocumentsByCountryKind[d.Country] == nil {
			e.DocumentsByCountryKind[d.Country] = map[schemas.Kind]int{}
		}
		e.DocumentsByCountryKind[d.Country][d.Kind]++
		if d.Kind == schemas.KindAdjustment {
			e.Events++
		} else {
			e.Events += 2
		}
		for _, b := range []*Bucket{&e.Total, bucket(e.ByDay, d.Day), bucket(e.ByMonth, d.Month), bucket(e.ByCountry, d.Country)} {
			b.add(d)
		}
		seen := map[string]bool{}
		for _, r := range d.rows {
			p, ok := e.Products[r.stock]
			if !ok {
				p = &Product{StockCode: r.stock, Net: decimal.Zero}
				e.Products[r.stock] = p
			}
			p.Net = p.Net.Add(r.amt)
			p.Quantity += r.qty
			p.Lines++
			if !seen[r.stock] {
				seen[r.stock] = true
				p.Documents = append(p.Documents, d.Number)
			}
		}
		d.rows = nil
	}
	for _, p := range e.Products {
		sort.Strings(p.Documents)
	}
	for _, m := range []map[string]*Bucket{e.ByDay, e.ByMonth, e.ByCountry} {
		for _, b := range m {
			b.seal()
		}
	}
	e.Total.seal()
	return e
}

func newBucket() Bucket {
	return Bucket{ByKind: map[schemas.Kind]int{}, Net: decimal.Zero, Gross: decimal.Zero, Returns: decimal.Zero,
		Adjust: decimal.Zero, customers: map[string]struct{}{}, buyers: map[string]struct{}{}}
}

func (b *Bucket) add(d *docAcc) {
	b.Documents++
	b.ByKind[d.Kind]++
	b.Lines += d.Lines
	b.Quantity += d.Quantity
	b.Net = b.Net.Add(d.Total)
	switch d.Kind {
	case schemas.KindSale:
		b.Orders++
		b.Gross = b.Gross.Add(d.Total)
		if d.CustomerID != "" {
			b.buyers[d.CustomerID] = struct{}{}
		}
	case schemas.KindCreditNote:
		b.Returns = b.Returns.Add(d.Total)
	case schemas.KindAdjustment:
		b.Adjust = b.Adjust.Add(d.Total)
	}
	if d.CustomerID != "" {
		b.customers[d.CustomerID] = struct{}{}
	}
}

func (b *Bucket) seal() {
	b.Customers, b.Buyers = len(b.customers), len(b.buyers)
	b.customers, b.buyers = nil, nil
}
