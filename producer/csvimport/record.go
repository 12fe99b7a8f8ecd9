package csvimport

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
)

// maxRecordLines is the most physical lines one record may span (a quoted
// field may hold line breaks, RFC 4180). It bounds what a quote that is
// never closed can swallow: the record is then reported as such at its first
// line and reading resumes at the next line.
const maxRecordLines = 16

// syntaxError is a record that is not RFC 4180 CSV. Field is the index of
// the field where the problem is (its column), Text the field's text up to
// the problem.
type syntaxError struct {
	Field   int
	Text    string
	Problem string
}

func (e *syntaxError) Error() string { return e.Problem }

// recordReader splits RFC 4180 records (comma-separated, fields optionally
// quoted with "" as an escaped quote, LF or CRLF line ends, empty lines
// skipped) and, unlike encoding/csv, recovers from a broken record: a bare
// or stray quote costs its line only, and a quote never closed costs the
// line it opens on, not the rest of the file. It reads one line ahead at
// most, plus the lines of a multi-line record (at most maxRecordLines).
type recordReader struct {
	br      *bufio.Reader
	fields  int      // expected number of fields
	next    int      // line number of the next physical line (1-based)
	back    [][]byte // lines pushed back after a multi-line record failed, in reverse order
	line    []byte   // the last physical line read from br (valid until the next readLine)
	buf     []byte   // field bytes of the current record
	ends    []int    // end offset in buf of each field
	record  []string // returned, reused
	first   []byte   // copy of the first line of a record that spans lines
	spanned [][]byte // copies of its other lines
	lineErr error    // I/O error met by readLine
}

func newRecordReader(r io.Reader, fields int) *recordReader {
	br, ok := r.(*bufio.Reader)
	if !ok {
		br = bufio.NewReaderSize(r, 1<<16)
	}
	return &recordReader{br: br, fields: fields, next: 1}
}

// readLine returns the next physical line without its line end, and false
// at the end of the input or on an I/O error (kept in lineErr).
func (rr *recordReader) readLine() ([]byte, bool) {
	if n := len(rr.back); n > 0 {
		l := rr.back[n-1]
		rr.back = rr.back[:n-1]
		rr.next++
		return l, true
	}
	rr.line = rr.line[:0]
	for {
		chunk, err := rr.br.ReadSlice('\n')
		rr.line = append(rr.line, chunk...)
		if err == nil {
			break
		}
		if errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		if errors.Is(err, io.EOF) && len(rr.line) > 0 {
			break
		}
		if !errors.Is(err, io.EOF) {
			rr.lineErr = err
		}
		return nil, false
	}
	rr.next++
	l := bytes.TrimSuffix(rr.line, []byte("\n"))
	return bytes.TrimSuffix(l, []byte("\r")), true
}

// Read returns the next record and the line it starts on. The record is
// valid until the next call. A malformed record comes back as the fields
// read before the problem (the first is its InvoiceNo when it was read) and
// a *syntaxError; a record whose field count differs from the expected one
// is returned without error (the caller names the missing column). At the
// end of the input Read returns io.EOF, after an I/O error that error.
func (rr *recordReader) Read() ([]string, int, error) {
	var l []byte
	for {
		var ok bool
		if l, ok = rr.readLine(); !ok {
			if rr.lineErr != nil {
				return nil, rr.next, rr.lineErr
			}
			return nil, rr.next, io.EOF
		}
		if len(l) > 0 {
			break
		}
	}
	start := rr.next - 1
	rr.spanned = rr.spanned[:0]
	fields, err := rr.parse(l, true)
	if spanned := rr.spanned; len(spanned) > 0 && (err != nil || len(fields) != rr.fields) {
		// A multi-line record that does not work out is a quote never
		// closed on its first line: report that line and re-read the others.
		for i := len(spanned) - 1; i >= 0; i-- {
			rr.back = append(rr.back, spanned[i])
		}
		rr.next -= len(spanned)
		fields, err = rr.parse(rr.first, false)
		var se *syntaxError
		if errors.As(err, &se) {
			se.Problem += fmt.Sprintf(" on its line (a quoted field may span lines only when the row then has %d columns)", rr.fields)
		}
	}
	return fields, start, err
}

// parse splits the record starting with line l. With multi, a quoted field
// may continue on the following lines (copied into rr.spanned); without, an
// open quote at the end of l is an error. It returns the fields read before
// an error.
func (rr *recordReader) parse(l []byte, multi bool) ([]string, error) {
	rr.buf, rr.ends = rr.buf[:0], rr.ends[:0]
	var err error
	i := 0
fields:
	for {
		fieldStart := len(rr.buf)
		if i < len(l) && l[i] == '"' {
			i++
			for {
				j := bytes.IndexByte(l[i:], '"')
				if j < 0 {
					rr.buf = append(rr.buf, l[i:]...)
					var more []byte
					ok := multi && len(rr.spanned)+1 < maxRecordLines
					if ok && len(rr.spanned) == 0 {
						rr.first = append(rr.first[:0], l...) // readLine overwrites l
					}
					if ok {
						more, ok = rr.readLine()
					}
					if !ok {
						err = &syntaxError{Field: len(rr.ends), Text: string(rr.buf[fieldStart:]), Problem: "has a quote that is not closed"}
						break fields
					}
					more = append([]byte(nil), more...)
					rr.spanned = append(rr.spanned, more)
					rr.buf = append(rr.buf, '\n')
					l, i = more, 0
					continue
				}
				rr.buf = append(rr.buf, l[i:i+j]...)
				i += j + 1
				if i < len(l) && l[i] == '"' { // "" is a quote
					rr.buf = append(rr.buf, '"')
					i++
					continue
				}
				break
			}
			rr.ends = append(rr.ends, len(rr.buf))
			if i == len(l) {
				break
			}
			if l[i] != ',' {
				err = &syntaxError{Field: len(rr.ends) - 1, Text: string(rr.buf[fieldStart:]) + "\"" + string(l[i:min(len(l), i+8)]),
					Problem: "has a character after its closing quote (a quote inside a quoted field is written \"\")"}
				rr.ends = rr.ends[:len(rr.ends)-1]
				break
			}
			i++
			continue
		}
		j := bytes.IndexByte(l[i:], ',')
		end := len(l)
		if j >= 0 {
			end = i + j
		}
		if q := bytes.IndexByte(l[i:end], '"'); q >= 0 {
			err = &syntaxError{Field: len(rr.ends), Text: string(l[i:end]),
				Problem: "has a quote inside a field that does not start with one (quote the field and write the quote as \"\")"}
			break
		}
		rr.buf = append(rr.buf, l[i:end]...)
		rr.ends = append(rr.ends, len(rr.buf))
		if j < 0 {
			break
		}
		i = end + 1
	}
	s := string(rr.buf)
	rr.record = rr.record[:0]
	from := 0
	for _, e := range rr.ends {
		rr.record = append(rr.record, s[from:e])
		from = e
	}
	return rr.record, err
}
