package csvimport

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"os"
)

// Source opens the input from its start; Stream calls it twice (two passes).
// Each reader is closed after its pass.
type Source func() (io.ReadCloser, error)

// FileSource returns a Source reading the file at path.
func FileSource(path string) Source {
	return func() (io.ReadCloser, error) { return os.Open(path) }
}

// Partitions of the run index; see Stream.
const indexPartitions = 64

// Stream reads the CSV (plain or gzip) of src and calls fn once per
// document, as soon as the document's last row was read, holding in memory
// only documents not complete yet. Documents come in the order of their
// last row. What ReadDocuments says of rows, errors and documents holds.
//
// It reads src twice:
//  1. An index pass splits the file into runs (rows of one InvoiceNo in a
//     row) and writes each run's number and last line to one of
//     indexPartitions temporary files (in os.TempDir, removed before Stream
//     returns), chosen by a hash of the number. Each partition is then read
//     alone: a number with more than one run is a split document, and only
//     those (with the last line of their last run) are kept.
//  2. The import pass groups rows into documents and hands each one on at
//     the end of its run, a split document at the end of its last run.
//
// Memory is bounded by the largest document and the split documents still
// open (the real file has one split document: 542806, around C542805) plus
// one index partition (1/64 of the runs, ≈ 20 bytes each), never by the
// length of the file. The input must not change between the passes: a
// change is detected (the passes' runs hashed) and reported, after the
// documents read so far were handed on.
//
// It stops at fn's first error or when ctx ends, and returns that error.
func Stream(ctx context.Context, src Source, fn func(Document) error) (Stats, error) {
	split, runsHash, err := indexRuns(ctx, src)
	if err != nil {
		return Stats{}, err
	}
	return groupRuns(ctx, src, split, runsHash, fn)
}

// runHasher hashes the sequence of runs (number, last line) a pass reads.
type runHasher struct{ h uint64 }

func (r *runHasher) add(number string, last int) {
	h := fnv.New64a()
	var b [binary.MaxVarintLen64]byte
	_, _ = h.Write(binary.AppendUvarint(b[:0], r.h))
	_, _ = h.Write([]byte(number))
	_, _ = h.Write(binary.AppendUvarint(b[:0], uint64(last)))
	r.h = h.Sum64()
}

// passRuns reads src once and calls run at the end of every run with its
// number, first and last lines; rec gets every record (nil to skip).
func passRuns(ctx context.Context, src Source, rec func(rec []string, line int, se *syntaxError), run func(number string, first, last int) error) error {
	in, err := src()
	if err != nil {
		return fmt.Errorf("open input: %w", err)
	}
	defer in.Close()
	rr, gz, err := openRecords(in)
	if err != nil {
		return err
	}
	cur, first, last, open := "", 0, 1, false
	for n := 0; ; n++ {
		if n%4096 == 0 && ctx.Err() != nil {
			return ctx.Err()
		}
		r, line, se, err := nextRecord(rr, gz, last)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return err
		}
		number := numberOf(r)
		if open && number != cur {
			if err := run(cur, first, last); err != nil {
				return err
			}
			open = false
		}
		if !open {
			cur, first, open = number, line, true
		}
		last = line
		if rec != nil {
			rec(r, line, se)
		}
	}
	if open {
		return run(cur, first, last)
	}
	return nil
}

// indexRuns is the index pass: it returns the split documents (number →
// last line of their last run) and the hash of the runs.
func indexRuns(ctx context.Context, src Source) (map[string]int, uint64, error) {
	dir, err := os.MkdirTemp("", "orderstream-import-")
	if err != nil {
		return nil, 0, fmt.Errorf("index: %w", err)
	}
	defer os.RemoveAll(dir)
	files := make([]*os.File, indexPartitions)
	writers := make([]*bufio.Writer, indexPartitions)
	for i := range files {
		if files[i], err = os.Create(fmt.Sprintf("%s/%02d", dir, i)); err != nil {
			return nil, 0, fmt.Errorf("index: %w", err)
		}
		defer files[i].Close()
		writers[i] = bufio.NewWriterSize(files[i], 8<<10)
	}
	var hash runHasher
	var buf []byte
	err = passRuns(ctx, src, nil, func(number string, _, last int) error {
		hash.add(number, last)
		h := fnv.New32a()
		_, _ = h.Write([]byte(number))
		buf = binary.AppendUvarint(buf[:0], uint64(len(number)))
		buf = append(buf, number...)
		buf = binary.AppendUvarint(buf, uint64(last))
		_, err := writers[h.Sum32()%indexPartitions].Write(buf)
		return err
	})
	if err != nil {
		return nil, 0, err
	}
	split := map[string]int{}
	for i, w := range writers {
		if err := w.Flush(); err != nil {
			return nil, 0, fmt.Errorf("index: %w", err)
		}
		if _, err := files[i].Seek(0, io.SeekStart); err != nil {
			return nil, 0, fmt.Errorf("index: %w", err)
		}
		if err := findSplit(bufio.NewReader(files[i]), split); err != nil {
			return nil, 0, fmt.Errorf("index: %w", err)
		}
	}
	return split, hash.h, nil
}

// findSplit reads one index partition and adds its split documents to
// split.
func findSplit(r *bufio.Reader, split map[string]int) error {
	type seen struct{ runs, last int }
	runs := map[string]seen{}
	for {
		n, err := binary.ReadUvarint(r)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return err
		}
		b := make([]byte, n)
		if _, err := io.ReadFull(r, b); err != nil {
			return err
		}
		last, err := binary.ReadUvarint(r)
		if err != nil {
			return err
		}
		s := runs[string(b)]
		runs[string(b)] = seen{s.runs + 1, max(s.last, int(last))}
	}
	for number, s := range runs {
		if s.runs > 1 {
			split[number] = s.last
		}
	}
	return nil
}

// groupRuns is the import pass.
func groupRuns(ctx context.Context, src Source, split map[string]int, want uint64, fn func(Document) error) (Stats, error) {
	var st Stats
	p := newParser()
	var cur *Document
	var hash runHasher
	err := passRuns(ctx, src, func(rec []string, line int, se *syntaxError) {
		st.Rows++
		if cur == nil {
			cur = p.doc(rec, line)
		}
		p.row(cur, line, rec, se)
	}, func(number string, _, last int) error {
		hash.add(number, last)
		d := cur
		cur = nil
		if end, ok := split[number]; ok && end != last {
			return nil // more rows of it follow
		}
		delete(p.byNum, number)
		p.docs = p.docs[:0]
		st.Documents++
		return fn(*d)
	})
	st.BadRows = p.badRows
	if err != nil {
		return st, err
	}
	if hash.h != want || len(p.byNum) > 0 {
		return st, errors.New("the input changed between the index pass and the import pass: import it again once it stays unchanged")
	}
	return st, nil
}
