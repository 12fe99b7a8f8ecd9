package scaledata_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/orderstream/orderstream/internal/scaledata"
	"github.com/orderstream/orderstream/internal/testfixture"
	"github.com/orderstream/orderstream/producer/csvimport"
	"github.com/orderstream/orderstream/schemas"
	"github.com/shopspring/decimal"
)

const header = "InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country\n"

func stringSource(s string) scaledata.Source {
	return func() (io.ReadCloser, error) { return io.NopCloser(strings.NewReader(s)), nil }
}

func TestGenerate(t *testing.T) {
	t.Parallel()
	in := header +
		"536365,85123A,\"WHITE HANGING HEART, T-LIGHT\",6,2010-12-01 08:26:00,2.55,17850,United Kingdom\n" +
		"C536379,D,Discount,-1,2011-02-28 09:41:00,27.50,14527,United Kingdom\n" +
		"A536370,B,Adjust bad debt,1,2012-02-29 14:50:00,-11062.06,,United Kingdom\n"
	tests := []struct {
		name    string
		give    string
		copies  int
		want    string
		wantErr string
	}{
		{name: "one copy is the file", give: in, copies: 1, want: in},
		{name: "three copies", give: in, copies: 3, want: in +
			"536380,85123A,\"WHITE HANGING HEART, T-LIGHT\",6,2011-12-01 08:26:00,2.55,17850,United Kingdom\n" +
			"C536394,D,Discount,-1,2012-02-28 09:41:00,27.50,14527,United Kingdom\n" +
			"A536385,B,Adjust bad debt,1,2013-02-28 14:50:00,-11062.06,,United Kingdom\n" +
			"536395,85123A,\"WHITE HANGING HEART, T-LIGHT\",6,2012-12-01 08:26:00,2.55,17850,United Kingdom\n" +
			"C536409,D,Discount,-1,2013-02-28 09:41:00,27.50,14527,United Kingdom\n" +
			"A536400,B,Adjust bad debt,1,2014-02-28 14:50:00,-11062.06,,United Kingdom\n"},
		{name: "numbers wrap within 6 digits", give: header + "999998,P,X,1,2011-01-02 10:00:00,1,,France\n999999,P,X,1,2011-01-02 10:00:00,1,,France\n",
			copies: 2, want: header + "999998,P,X,1,2011-01-02 10:00:00,1,,France\n999999,P,X,1,2011-01-02 10:00:00,1,,France\n" +
				"000000,P,X,1,2012-01-02 10:00:00,1,,France\n000001,P,X,1,2012-01-02 10:00:00,1,,France\n"},
		{name: "too many copies", give: header + "000000,P,X,1,2011-01-02 10:00:00,1,,France\n500000,P,X,1,2011-01-02 10:00:00,1,,France\n",
			copies: 2, wantErr: "at most 1 copies"},
		{name: "bad number", give: header + "X12,P,X,1,2011-01-02 10:00:00,1,,France\n", copies: 2, wantErr: `line 2: column InvoiceNo: "X12"`},
		{name: "bad date", give: header + "100000,P,X,1,01/02/2011 10:00,1,,France\n", copies: 2, wantErr: "line 2: column InvoiceDate"},
		{name: "no copies", give: in, copies: 0, wantErr: "copies = 0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var out bytes.Buffer
			rows, err := scaledata.Generate(&out, stringSource(tt.give), tt.copies)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if out.String() != tt.want {
				t.Errorf("got\n%s\nwant\n%s", out.String(), tt.want)
			}
			if want := strings.Count(tt.want, "\n") - 1; rows != want {
				t.Errorf("rows = %d, want %d", rows, want)
			}
		})
	}
}

// TestGenerateMemoryFlat generates 150 copies of a 5,000-row file and
// compares the live heap at the second copy with the live heap at the last.
func TestGenerateMemoryFlat(t *testing.T) {
	var b strings.Builder
	b.WriteString(header)
	for i := range 5000 {
		fmt.Fprintf(&b, "%06d,P%d,PRODUCT %d,1,2011-01-02 10:00:00,1.25,12345,France\n", 100000+i, i%300, i)
	}
	in := b.String()
	opened := 0
	var second, last uint64
	live := func() uint64 {
		runtime.GC()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		return m.HeapAlloc
	}
	src := func() (io.ReadCloser, error) {
		opened++
		switch opened {
		case 3: // after the range pass and copy 0
			second = live()
		case 151:
			last = live()
		}
		return io.NopCloser(strings.NewReader(in)), nil
	}
	rows, err := scaledata.Generate(io.Discard, src, 150)
	if err != nil || rows != 150*5000 {
		t.Fatalf("rows %d, err %v", rows, err)
	}
	t.Logf("live heap at copy 2: %d KiB, at copy 150: %d KiB", second>>10, last>>10)
	if last > second+256<<10 {
		t.Errorf("live heap grew from %d KiB to %d KiB over the copies", second>>10, last>>10)
	}
}

// TestGenerateMatchesOracle generates two copies of the first 150,000 rows
// of the real file, reads them the way the import does (csvimport.Stream)
// and compares every figure with the oracle testfixture.ComputeExpectedCopies
// computes from those rows on its own.
func TestGenerateMatchesOracle(t *testing.T) {
	const copies, prefixRows = 2, 150_000
	dir := t.TempDir()
	real := filepath.Join(dir, "prefix.csv")
	writePrefix(t, testfixture.RealFile(t), real, prefixRows)
	path := filepath.Join(dir, "copies.csv")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	rows, err := scaledata.Generate(f, func() (io.ReadCloser, error) { return os.Open(real) }, copies)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if rows != copies*prefixRows {
		t.Fatalf("rows = %d, want %d", rows, copies*prefixRows)
	}
	want, err := testfixture.ComputeExpectedCopies(real, copies)
	if err != nil {
		t.Fatal(err)
	}
	one, err := testfixture.ComputeExpected(real)
	if err != nil {
		t.Fatal(err)
	}
	london, err := time.LoadLocation("Europe/London")
	if err != nil {
		t.Fatal(err)
	}
	net, kinds, lines, months := decimal.Zero, map[schemas.Kind]int{}, 0, map[string]decimal.Decimal{}
	customers := map[string]bool{}
	n := 0
	_, err = csvimport.Stream(context.Background(), csvimport.FileSource(path), func(d csvimport.Document) error {
		n++
		if d.Err() != nil {
			return d.Err()
		}
		w := want.Docs[d.Number]
		if w == nil || w.Kind != d.Kind || w.Lines != len(d.Lines) || !w.Total.Equal(d.Total()) || !w.PlacedAt.Equal(d.PlacedAt) ||
			w.FirstLine != d.FirstLine || w.CustomerID != d.CustomerID || w.Country != d.Country {
			t.Errorf("document %s: %s, %d lines, total %s, placed %s, first line %d; oracle %+v", d.Number, d.Kind, len(d.Lines), d.Total(), d.PlacedAt, d.FirstLine, w)
		}
		net = net.Add(d.Total())
		kinds[d.Kind]++
		lines += len(d.Lines)
		m := d.PlacedAt.In(london).Format("2006-01")
		months[m] = months[m].Add(d.Total())
		if d.CustomerID != "" {
			customers[d.CustomerID] = true
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n != copies*one.Total.Documents || n != want.Total.Documents || len(want.Docs) != n {
		t.Errorf("documents = %d, oracle %d, want %d × %d", n, want.Total.Documents, copies, one.Total.Documents)
	}
	if !net.Equal(want.Total.Net) || !net.Equal(one.Total.Net.Mul(decimal.NewFromInt(copies))) {
		t.Errorf("net = %s, oracle %s, want %d × %s", net, want.Total.Net, copies, one.Total.Net)
	}
	if lines != want.Total.Lines || lines != copies*prefixRows || len(customers) != want.Total.Customers || len(customers) != one.Total.Customers {
		t.Errorf("lines %d, customers %d; oracle %+v", lines, len(customers), want.Total)
	}
	for k, c := range one.Total.ByKind {
		if kinds[k] != copies*c || want.Total.ByKind[k] != copies*c {
			t.Errorf("%s: %d documents, oracle %d, want %d × %d", k, kinds[k], want.Total.ByKind[k], copies, c)
		}
	}
	if len(months) != len(want.ByMonth) {
		t.Errorf("months = %d, oracle %d", len(months), len(want.ByMonth))
	}
	for m, b := range want.ByMonth {
		if !months[m].Equal(b.Net) {
			t.Errorf("month %s: net %s, oracle %s", m, months[m], b.Net)
		}
	}
}

// writePrefix writes the header and the first rows rows of the gzip CSV src
// to dst, plain.
func writePrefix(t *testing.T, src, dst string, rows int) {
	t.Helper()
	f, err := os.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r, err := csvimport.Decompress(f)
	if err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(r)
	var b bytes.Buffer
	for i := 0; i <= rows && sc.Scan(); i++ {
		b.Write(sc.Bytes())
		b.WriteByte('\n')
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dst, b.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
}
