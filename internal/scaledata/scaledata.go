// Package scaledata generates N copies of an Online Retail CSV (the real
// file) for measuring how orderstream behaves as the data grows: N× data has
// N× documents, lines and events, each copy with the per-document shape of
// the original, fresh document numbers and dates shifted by whole years.
//
// Copy k (0 ≤ k < N) of a row:
//   - InvoiceNo: the prefix ("C", "A" or none) is kept; the 6 digits d
//     become (d + k·W) mod 1,000,000, zero-padded to 6 digits, where W =
//     max − min + 1 over the input's numbers (the real file: 536365..581587,
//     W = 45,223). Copy 0 keeps every number; copies never share one as long
//     as N·W ≤ 1,000,000 (the real file: N ≤ 22), else Generate refuses.
//   - InvoiceDate: the year plus k (Europe/London wall-clock time, as in the
//     file); 29 February of a year that has none becomes 28 February.
//   - Every other column is copied unchanged (customers included, so each
//     year of the copies has the original's customers).
//
// Generation streams: it reads the input once for the number range and once
// per copy, one record at a time, so memory does not depend on N or on the
// file's length.
package scaledata

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/orderstream/orderstream/producer/csvimport"
)

// Source opens the input from its start (plain or gzip CSV); Generate calls
// it N+1 times and closes each reader.
type Source func() (io.ReadCloser, error)

// numberSpace is the number of 6-digit document numbers.
const numberSpace = 1_000_000

// Generate writes copies copies of src, as plain CSV with the input's header,
// to dst (see the package doc). It returns the number of data rows written.
// A row that is not CSV of 8 columns, an InvoiceNo that is not [CA]?6 digits
// or an InvoiceDate that does not start with a 4-digit year is an error
// naming its line.
func Generate(dst io.Writer, src Source, copies int) (int, error) {
	if copies < 1 {
		return 0, fmt.Errorf("copies = %d: want at least 1", copies)
	}
	lo, hi, err := numberRange(src)
	if err != nil {
		return 0, err
	}
	width := hi - lo + 1
	if copies*width > numberSpace {
		return 0, fmt.Errorf("%d copies of document numbers %06d..%06d do not fit in 6 digits: at most %d copies", copies, lo, hi, numberSpace/width)
	}
	w := csv.NewWriter(dst)
	rows := 0
	for k := range copies {
		err := eachRow(src, func(rec []string, line int) error {
			if line == 1 {
				if k == 0 {
					return w.Write(rec)
				}
				return nil
			}
			prefix, d, _ := splitNumber(rec[0])
			rec[0] = fmt.Sprintf("%s%06d", prefix, (d+k*width)%numberSpace)
			date, err := shiftYear(rec[4], k)
			if err != nil {
				return fmt.Errorf("line %d: column InvoiceDate: %w", line, err)
			}
			rec[4] = date
			rows++
			return w.Write(rec)
		})
		if err != nil {
			return rows, fmt.Errorf("copy %d: %w", k, err)
		}
	}
	w.Flush()
	return rows, w.Error()
}

// numberRange returns the smallest and largest 6-digit part of the input's
// document numbers.
func numberRange(src Source) (lo, hi int, err error) {
	lo, hi = numberSpace, -1
	err = eachRow(src, func(rec []string, line int) error {
		if line == 1 {
			return nil
		}
		_, d, err := splitNumber(rec[0])
		if err != nil {
			return fmt.Errorf("line %d: column InvoiceNo: %w", line, err)
		}
		lo, hi = min(lo, d), max(hi, d)
		return nil
	})
	if err == nil && hi < 0 {
		err = errors.New("the input has no rows")
	}
	return lo, hi, err
}

// splitNumber splits an InvoiceNo into its prefix and its 6 digits.
func splitNumber(s string) (string, int, error) {
	prefix := ""
	if strings.HasPrefix(s, "C") || strings.HasPrefix(s, "A") {
		prefix, s = s[:1], s[1:]
	}
	d, err := strconv.Atoi(s)
	if len(s) != 6 || err != nil || d < 0 {
		return "", 0, fmt.Errorf("%q is not a document number ([CA]? and 6 digits)", prefix+s)
	}
	return prefix, d, nil
}

// shiftYear adds years to the year of a "2006-01-02 15:04:05" date, written
// as text so the wall-clock time stays as it is.
func shiftYear(s string, years int) (string, error) {
	if years == 0 {
		return s, nil
	}
	y, err := strconv.Atoi(s[:min(4, len(s))])
	if len(s) < 10 || err != nil || s[4] != '-' {
		return "", fmt.Errorf("%q does not start with a year (2006-01-02 15:04:05)", s)
	}
	y += years
	rest := s[4:]
	if strings.HasPrefix(rest, "-02-29") && !(y%4 == 0 && (y%100 != 0 || y%400 == 0)) {
		rest = "-02-28" + rest[6:]
	}
	return fmt.Sprintf("%04d%s", y, rest), nil
}

// eachRow calls fn for every record of src (header = line 1), reused between
// calls.
func eachRow(src Source, fn func(rec []string, line int) error) error {
	in, err := src()
	if err != nil {
		return fmt.Errorf("open input: %w", err)
	}
	defer in.Close()
	r, err := csvimport.Decompress(in)
	if err != nil {
		return err
	}
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = len(csvimport.Columns)
	cr.ReuseRecord = true
	for {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("read input: %w", err)
		}
		line, _ := cr.FieldPos(0)
		if err := fn(rec, line); err != nil {
			return err
		}
	}
}
