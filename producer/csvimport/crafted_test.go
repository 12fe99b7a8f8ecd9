package csvimport_test

import (
	"bytes"
	"compress/gzip"

	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/orderstream/orderstream/producer/csvimport"
	"github.com/orderstream/orderstream/producer/order"
	"github.com/orderstream/orderstream/schemas"
	"github.com/shopspring/decimal"
)

// crafted holds one of each: a sale over two minutes with a quoted
// description, a credit note with an exact repeat (in BST), a guest
// adjustment with a negative price, and a guest sale with a 0.001 price whose
// rows are split by another document.
const crafted = `InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country
536365,85123A,"WHITE HANGING HEART, T-LIGHT",6,2010-12-01 08:26:00,2.55,17850,United Kingdom
536365,71053,WHITE METAL LANTERN,6,2010-12-01 08:25:00,3.39,17850,United Kingdom
536366,POST,"POSTAGE ""EXPRESS""",3,2010-12-01 08:28:00,0.001,,Unspecified
C536379,D,Discount,-1,2011-06-01 09:41:00,27.50,14527,United Kingdom
C536379,D,Discount,-1,2011-06-01 09:41:00,27.50,14527,United Kingdom
A563185,B,Adjust bad debt,1,2011-08-12 14:50:00,-11062.06,,United Kingdom
536366,22633,HAND WARMER UNION JACK,6,2010-12-01 08:28:00,1.85,,Unspecified
`

func utc(s string) time.Time {
	t, err := time.Parse(time.DateTime, s)
	if err != nil {
		panic(err)
	}
	return t
}

func TestReadDocuments(t *testing.T) {
	t.Parallel()
	var docs []csvimport.Document
	err := csvimport.ReadDocuments(strings.NewReader(crafted), func(d csvimport.Document) error {
		docs = append(docs, d)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []struct {
		number, customer, country string
		kind                      schemas.Kind
		placed                    time.Time
		sourceLines               []int
		total                     string
	}{
		{"536365", "17850", "United Kingdom", schemas.KindSale, utc("2010-12-01 08:25:00"), []int{2, 3}, "35.64"},
		{"536366", "", "Unspecified", schemas.KindSale, utc("2010-12-01 08:28:00"), []int{4, 8}, "11.103"},
		{"C536379", "14527", "United Kingdom", schemas.KindCreditNote, utc("2011-06-01 08:41:00"), []int{5, 6}, "-55"},
		{"A563185", "", "United Kingdom", schemas.KindAdjustment, utc("2011-08-12 13:50:00"), []int{7}, "-11062.06"},
	}
	if len(docs) != len(want) {
		t.Fatalf("got %d documents, want %d", len(docs), len(want))
	}
	for i, w := range want {
		d := docs[i]
		if d.Number != w.number || d.Kind != w.kind || d.CustomerID != w.customer || d.Country != w.country ||
			!d.PlacedAt.Equal(w.placed) || d.PlacedAt.Location() != time.UTC || d.Err() != nil {
			t.Errorf("document %d = %+v, want %+v", i, d, w)
		}
		if !d.Total().Equal(decimal.RequireFromString(w.total)) {
			t.Errorf("%s: total %s, want %s", d.Number, d.Total(), w.total)
		}
		if len(d.Lines) != len(w.sourceLines) {
			t.Fatalf("%s: %d lines, want %d", d.Number, len(d.Lines), len(w.sourceLines))
		}
		for j, l := range d.Lines {
			if l.SourceLine != w.sourceLines[j] || l.LineNo != j+1 || l.UnitPrice.Currency != schemas.CurrencyGBP {
				t.Errorf("%s line %d = %+v, want source line %d", d.Number, j+1, l, w.sourceLines[j])
			}
		}
	}
	if got := docs[0].Lines[0].Description; got != "WHITE HANGING HEART, T-LIGHT" {
		t.Errorf("quoted description = %q", got)
	}
	if got := docs[1].Lines[0].Description; got != `POSTAGE "EXPRESS"` {
		t.Errorf("escaped quotes = %q", got)
	}
	// The sale's second line keeps its own time; the order is placed at the earliest.
	if got := docs[0].Lines[0].InvoicedAt; !got.Equal(utc("2010-12-01 08:26:00")) {
		t.Errorf("line invoiced at %s", got)
	}
}

func TestReadDocumentsGzipAndHeader(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		give    []byte
		want    int
		wantErr error
	}{
		{name: "plain", give: []byte(crafted), want: 4},
		{name: "gzip", give: gzipped(t, crafted), want: 4},
		{name: "BOM", give: []byte("\uFEFF" + crafted), want: 4},
		{name: "header only", give: []byte(strings.SplitN(crafted, "\n", 2)[0] + "\n"), want: 0},
		{name: "empty", give: nil, wantErr: csvimport.ErrHeader},
		{name: "wrong header", give: []byte("Invoice,Stock,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country\n"), wantErr: csvimport.ErrHeader},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			docs, st, err := csvimport.Collect(strings.NewReader(string(tt.give)))
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if len(docs) != tt.want || st.Documents != tt.want {
				t.Errorf("documents = %d (stats %+v), want %d", len(docs), st, tt.want)
			}
		})
	}
}

const header = "InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country\n"

func TestRowErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		give       string // rows after the header; the bad one is line 2
		wantColumn string
		wantText   string
	}{
		{"bad quantity", `536370,22728,ALARM CLOCK,abc,2010-12-01 08:45:00,3.75,12583,France`, "Quantity", `column Quantity: "abc" is not an integer`},
		{"fractional quantity", `536370,22728,ALARM CLOCK,1.5,2010-12-01 08:45:00,3.75,12583,France`, "Quantity", `"1.5" is not an integer`},
		{"bad date", `536371,22086,PAPER CHAIN,80,2010-13-01 09:00:00,2.55,13748,United Kingdom`, "InvoiceDate", `"2010-13-01 09:00:00" is not a date`},
		{"date with zone", `536371,22086,PAPER CHAIN,80,2010-12-01T09:00:00Z,2.55,13748,United Kingdom`, "InvoiceDate", `is not a date`},
		{"bad price", `536372,22632,HAND WARMER,6,2010-12-01 09:01:00,1.8.5,17850,United Kingdom`, "UnitPrice", `"1.8.5" is not a price`},
		{"price with 4 decimals", `536372,22632,HAND WARMER,6,2010-12-01 09:01:00,1.8555,17850,United Kingdom`, "UnitPrice", `is not a price`},
		{"price as exponent", `536372,22632,HAND WARMER,6,2010-12-01 09:01:00,1e2,17850,United Kingdom`, "UnitPrice", `is not a price`},
		{"unknown prefix", `X536373,21730,GLASS STAR,6,2010-12-01 09:02:00,4.25,17850,United Kingdom`, "InvoiceNo", `"X536373" is not a document number`},
		{"short number", `53637,21730,GLASS STAR,6,2010-12-01 09:02:00,4.25,17850,United Kingdom`, "InvoiceNo", `is not a document number`},
		{"empty stock code", `536373,,GLASS STAR,6,2010-12-01 09:02:00,4.25,17850,United Kingdom`, "StockCode", `column StockCode: is empty: want 1 to 64 characters`},
		{"bad customer", `536373,21730,GLASS STAR,6,2010-12-01 09:02:00,4.25,17850.0,United Kingdom`, "CustomerID", `is not a customer number`},
		{"empty country", `536373,21730,GLASS STAR,6,2010-12-01 09:02:00,4.25,17850,`, "Country", `column Country: is empty: want 1 to 64 characters`},
		{"control character in the country", "536373,21730,GLASS STAR,6,2010-12-01 09:02:00,4.25,17850,\aFrance", "Country", `column Country: "\aFrance" contains a control character at byte 1`},
		{"control character in the stock code", "536373,21730\x7f,GLASS STAR,6,2010-12-01 09:02:00,4.25,17850,France", "StockCode", `contains a control character at byte 6`},
		{"missing column", `536374,21258,VICTORIAN SEWING BOX,32,2010-12-01 09:09:00,10.95,15100`, "Country", `column Country: is missing: the row has 7 columns, want 8`},
		{"extra column", `536374,21258,VICTORIAN SEWING BOX,32,2010-12-01 09:09:00,10.95,15100,France,x`, "", `9 columns, want 8`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			docs, st, err := csvimport.Collect(strings.NewReader(header + tt.give + "\n"))
			if err != nil {
				t.Fatal(err)
			}
			if len(docs) != 1 || len(docs[0].Errs) != 1 || st.BadRows != 1 {
				t.Fatalf("documents %+v, stats %+v: want one document with one row error", docs, st)
			}
			re := docs[0].Errs[0]
			if re.Line != 2 || re.Column != tt.wantColumn || !strings.Contains(re.Error(), tt.wantText) || !strings.HasPrefix(re.Error(), "line 2: ") {
				t.Errorf("error = %q (column %q), want line 2, column %q, containing %q", re, re.Column, tt.wantColumn, tt.wantText)
			}
			if len(docs[0].Lines) != 0 {
				t.Errorf("bad row kept as a line: %+v", docs[0].Lines)
			}
			if _, err := csvimport.Events(docs[0]); err == nil {
				t.Error("Events accepted a document with a malformed row")
			}
		})
	}
}

func TestDocumentConsistency(t *testing.T) {
	t.Parallel()
	give := header +
		"536365,85123A,A,6,2010-12-01 08:26:00,2.55,17850,United Kingdom\n" +
		"536365,71053,B,6,2010-12-01 08:26:00,3.39,17851,United Kingdom\n" +
		"536365,71054,C,6,2010-12-01 08:26:00,3.39,17850,France\n"
	docs, _, err := csvimport.Collect(strings.NewReader(give))
	if err != nil {
		t.Fatal(err)
	}
	if len(docs) != 1 || len(docs[0].Errs) != 2 {
		t.Fatalf("want 1 document with 2 errors, got %+v", docs)
	}
	if e := docs[0].Errs[0]; e.Line != 3 || e.Column != "CustomerID" || !strings.Contains(e.Error(), `differs from "17850" on line 2`) {
		t.Errorf("first error = %v", e)
	}
	if e := docs[0].Errs[1]; e.Line != 4 || e.Column != "Country" {
		t.Errorf("second error = %v", e)
	}
}

func TestOrderID(t *testing.T) {
	t.Parallel()
	a, b := csvimport.OrderID("536365"), csvimport.OrderID("536365")
	if a != b {
		t.Fatalf("OrderID not deterministic: %s, %s", a, b)
	}
	if a == csvimport.OrderID("C536365") {
		t.Fatal("sale and credit note of the same digits share an id")
	}
	if len(a) != 36 || a[14] != '5' {
		t.Errorf("OrderID = %s, want a UUIDv5", a)
	}
}

func TestEvents(t *testing.T) {
	t.Parallel()
	docs, _, err := csvimport.Collect(strings.NewReader(crafted))
	if err != nil {
		t.Fatal(err)
	}
	v, err := schemas.NewValidator()
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		number     string
		wantTypes  []string
		wantAmount string // of the second event
	}{
		{"536365", []string{schemas.TypeOrderPlaced, schemas.TypeOrderPaid}, "35.64"},
		{"536366", []string{schemas.TypeOrderPlaced, schemas.TypeOrderPaid}, "11.103"},
		{"C536379", []string{schemas.TypeOrderPlaced, schemas.TypeOrderRefunded}, "55"},
		{"A563185", []string{schemas.TypeOrderPlaced}, ""},
	}
	for i, tt := range tests {
		evs, err := csvimport.Events(docs[i])
		if err != nil {
			t.Fatalf("%s: %v", tt.number, err)
		}
		if len(evs) != len(tt.wantTypes) {
			t.Fatalf("%s: %d events, want %d", tt.number, len(evs), len(tt.wantTypes))
		}
		for j, e := range evs {
			if e.EventType != tt.wantTypes[j] || e.AggregateVersion != int64(j+1) || e.AggregateID != csvimport.OrderID(tt.number) ||
				!e.OccurredAt.Equal(docs[i].PlacedAt) {
				t.Errorf("%s event %d = %+v", tt.number, j, e)
			}
			if _, err := v.Marshal(e); err != nil {
				t.Errorf("%s event %d: %v", tt.number, j, err)
			}
		}
		if tt.wantAmount == "" {
			continue
		}
		p, err := evs[1].Decode()
		if err != nil {
			t.Fatal(err)
		}
		var amount schemas.Money
		switch p := p.(type) {
		case *schemas.OrderPaid:
			amount = p.Amount
		case *schemas.OrderRefunded:
			amount = p.Amount
		}
		if !amount.Equal(schemas.NewMoney(decimal.RequireFromString(tt.wantAmount), schemas.CurrencyGBP)) {
			t.Errorf("%s: %s amount %s, want %s GBP", tt.number, evs[1].EventType, amount, tt.wantAmount)
		}
	}
}

func TestEventsRefusedByAggregate(t *testing.T) {
	t.Parallel()
	// A credit note with a positive quantity is well-formed CSV but the
	// aggregate refuses it.
	docs, _, err := csvimport.Collect(strings.NewReader(header + "C536379,D,Discount,1,2011-06-01 09:41:00,27.50,14527,United Kingdom\n"))
	if err != nil {
		t.Fatal(err)
	}
	_, err = csvimport.Events(docs[0])
	var re *order.RuleError
	if !errors.As(err, &re) || !errors.Is(err, order.ErrInvalidArgument) {
		t.Fatalf("err = %v, want a *order.RuleError for ErrInvalidArgument", err)
	}
}

func gzipped(t *testing.T, s string) []byte {
	t.Helper()
	var b bytes.Buffer
	zw := gzip.NewWriter(&b)
	if _, err := zw.Write([]byte(s)); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// TestReadDocumentsBrokenGzip checks that a truncated or corrupt .gz is
// named as such, after the last line read, and that nothing is returned.
func TestReadDocumentsBrokenGzip(t *testing.T) {
	t.Parallel()
	gz := gzipped(t, crafted)
	corrupt := append([]byte(nil), gz...)
	corrupt[len(corrupt)-8] ^= 0xff // CRC-32 of the trailer
	tests := []struct {
		name string
		give []byte
		want []string
	}{
		{"truncated", gz[:len(gz)-6], []string{"read CSV after line ", "the gzip stream ends early: the file is truncated"}},
		{"bad checksum", corrupt, []string{"read CSV after line ", "the gzip stream is corrupt"}},
		{"truncated in the header", gz[:12], []string{"line 1: ", "truncated"}},
		{"truncated in the gzip header", gz[:5], []string{"gzip: ", "truncated"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			docs, _, err := csvimport.Collect(strings.NewReader(string(tt.give)))
			if err == nil || len(docs) != 0 {
				t.Fatalf("docs %d, err %v; want none and an error", len(docs), err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("err %q does not contain %q", err, w)
				}
			}
		})
	}
}

// TestMalformedRowsReported reads a file with one row of each kind of
// problem between good documents: every bad row is reported with its line
// and column, quoting at most a short excerpt, and nothing stops the
// reading — a quote never closed costs its own line only.
func TestMalformedRowsReported(t *testing.T) {
	t.Parallel()
	huge := strings.Repeat("A", 10<<20)
	rows := []string{
		`536365,85123A,WHITE HANGING HEART,6,2010-12-01 08:26:00,2.55,17850,United Kingdom`,   // 2
		"536366,22728,HEART \xff\xfe,6,2010-12-01 08:45:00,3.75,12583,France",                 // 3 invalid UTF-8
		`536367,22728,"ALARM CLOCK,6,2010-12-01 08:45:00,3.75,12583,France`,                   // 4 quote never closed
		`536368,22727,ALARM CLOCK RED,24,2010-12-01 08:45:00,3.75,12583,France`,               // 5
		`536369,22086,"PAPER CHAIN KIT",80,2010-12-01 09:00:00,2.55,13748,United Kingdom`,     // 6
		`536370,22632,HAND "WARMER",6,2010-12-01 09:01:00,1.85,17850,United Kingdom`,          // 7 stray quote
		`536371,21730,` + huge + `,6,2010-12-01 09:02:00,4.25,17850,United Kingdom`,           // 8 10 MiB description
		"536372,21\x0030,GLASS STAR,6,2010-12-01 09:02:00,4.25,17850,United Kingdom",          // 9 NUL
		`536373,21258,VICTORIAN SEWING BOX,32,2010-12-01 09:09:00,10.95,15100`,                // 10 missing column
		`536374,P,BIG,1000,2010-12-01 09:10:00,1000000000000,15100,United Kingdom`,            // 11 line amount (issue 10)
		`536375,P,AT THE BOUND,1,2010-12-01 09:10:00,99999999999999.999,15100,United Kingdom`, // 12 fine
		`536376,P,EARLY,1,1969-12-31 23:00:00,1,15100,United Kingdom`,                         // 13 before 1970
		"536377,22633,\"HAND WARMER\nUNION JACK\",6,2010-12-01 08:28:00,1.85,,Unspecified",    // 14-15 a field on two lines
		`536378,P,PRICE,1,2010-12-01 09:10:00,1.0005,15100,United Kingdom`,                    // 16 4 decimals
		`536379,P,QTY,1000000000,2010-12-01 09:10:00,0.001,15100,United Kingdom`,              // 17 quantity
		`A536380,B,Adjust,1,2011-08-12 14:50:00,99999999999999.999,,United Kingdom`,           // 18
		`A536380,B,Adjust,1,2011-08-12 14:50:00,0.001,,United Kingdom`,                        // 19 running total
		`536381,P,AMBIGUOUS HOUR,1,2011-10-30 01:30:00,1,15100,United Kingdom`,                // 20 fine
		`536382,X,"never closed,1,2010-12-01 08:28:00,1.85,,Unspecified`,                      // 21 quote never closed, at the end
	}
	docs, st, err := csvimport.Collect(strings.NewReader(header + strings.Join(rows, "\n") + "\n"))
	if err != nil {
		t.Fatal(err)
	}
	want := []struct {
		line           int
		number, column string
		text           string
	}{
		{3, "536366", "Description", `column Description: "HEART \xff\xfe" is not valid UTF-8 (byte 0xff at byte 7)`},
		{4, "536367", "Description", `column Description: "ALARM CLOCK,6,2010-12-01 08:45:00,3.75,1…" has a quote that is not closed on its line`},
		{7, "536370", "Description", `column Description: "HAND \"WARMER\"" has a quote inside a field that does not start with one`},
		{8, "536371", "Description", `column Description: "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA…" has 10485760 characters, more than 512`},
		{9, "536372", "StockCode", `column StockCode: "21\x0030" contains a NUL character at byte 3`},
		{10, "536373", "Country", `column Country: is missing: the row has 7 columns, want 8`},
		{11, "536374", "UnitPrice", `column UnitPrice: "1000000000000" × Quantity 1000 is beyond ±99999999999999.999 GBP`},
		{13, "536376", "InvoiceDate", `column InvoiceDate: "1969-12-31 23:00:00" is outside 1970-01-01T00:00:01Z .. 2105-12-31T23:59:59Z`},
		{16, "536378", "UnitPrice", `column UnitPrice: "1.0005" is not a price in GBP: has more than 3 decimals`},
		{17, "536379", "Quantity", `column Quantity: "1000000000" is beyond ±999999999`},
		{19, "A536380", "UnitPrice", `column UnitPrice: "0.001" × Quantity 1 brings the running total of document A536380 beyond ±99999999999999.999 GBP`},
		{21, "536382", "Description", `column Description: "never closed,1,2010-12-01 08:28:00,1.85,…" has a quote that is not closed`},
	}
	var got []*csvimport.RowError
	byNumber := map[string]csvimport.Document{}
	for _, d := range docs {
		byNumber[d.Number] = d
		got = append(got, d.Errs...)
	}
	slices.SortFunc(got, func(a, b *csvimport.RowError) int { return a.Line - b.Line })
	if len(got) != len(want) || st.BadRows != len(want) || st.Rows != 19 || st.Documents != 18 {
		t.Errorf("%d row errors, stats %+v; want %d, 19 rows, 18 documents", len(got), st, len(want))
		for _, e := range got {
			t.Log(e)
		}
	}
	for i, w := range want {
		if i >= len(got) {
			break
		}
		e := got[i]
		if e.Line != w.line || e.Column != w.column || !strings.HasPrefix(e.Detail(), w.text) || len(byNumber[w.number].Errs) == 0 {
			t.Errorf("row error %d = %q (line %d, column %q), want line %d, column %q, of document %s, starting %q", i, e.Detail(), e.Line, e.Column, w.line, w.column, w.number, w.text)
		}
		if len(e.Error()) > 300 {
			t.Errorf("line %d: message of %d bytes", e.Line, len(e.Error()))
		}
	}
	for _, n := range []string{"536365", "536368", "536369", "536375", "536377", "536381"} {
		d, ok := byNumber[n]
		if !ok || d.Err() != nil || len(d.Lines) != 1 {
			t.Errorf("good document %s = %+v, want one line and no error", n, d)
			continue
		}
		if _, err := csvimport.Events(d); err != nil {
			t.Errorf("good document %s: %v", n, err)
		}
	}
	if got := byNumber["536377"].Lines; len(got) == 1 && got[0].Description != "HAND WARMER\nUNION JACK" {
		t.Errorf("multi-line description = %q", got[0].Description)
	}
}

// TestAmbiguousLocalTime pins how InvoiceDate is read around the clock
// changes of Europe/London: the repeated autumn hour is taken at its first
// (BST) occurrence, a time in the spring gap is moved forward by an hour.
func TestAmbiguousLocalTime(t *testing.T) {
	t.Parallel()
	tests := []struct{ give, want string }{
		{"2011-10-30 00:59:59", "2011-10-29 23:59:59"},
		{"2011-10-30 01:00:00", "2011-10-30 00:00:00"}, // first occurrence (BST), not 01:00 UTC
		{"2011-10-30 01:30:00", "2011-10-30 00:30:00"},
		{"2011-10-30 01:59:59", "2011-10-30 00:59:59"},
		{"2011-10-30 02:00:00", "2011-10-30 02:00:00"},
		{"2010-10-31 01:30:00", "2010-10-31 00:30:00"},
		{"2011-03-27 00:59:59", "2011-03-27 00:59:59"},
		{"2011-03-27 01:30:00", "2011-03-27 01:30:00"}, // in the gap: read as GMT, i.e. 02:30 BST
		{"2011-03-27 02:30:00", "2011-03-27 01:30:00"},
		{"2011-07-01 12:00:00", "2011-07-01 11:00:00"},
	}
	for _, tt := range tests {
		docs, _, err := csvimport.Collect(strings.NewReader(header + "536365,P,X,1," + tt.give + ",1,17850,United Kingdom\n"))
		if err != nil {
			t.Fatal(err)
		}
		if len(docs) != 1 || docs[0].Err() != nil {
			t.Fatalf("%s: %+v", tt.give, docs)
		}
		if got := docs[0].PlacedAt; !got.Equal(utc(tt.want)) {
			t.Errorf("%s Europe/London = %s, want %s UTC", tt.give, got.Format(time.DateTime), tt.want)
		}
	}
}
