package csvimport_test

import (
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"os"
	"reflect"
	"runtime"
	"strings"
	"testing"

	"github.com/orderstream/orderstream/internal/testfixture"
	"github.com/orderstream/orderstream/producer/csvimport"
)

func stringSource(s string) csvimport.Source {
	return func() (io.ReadCloser, error) { return io.NopCloser(strings.NewReader(s)), nil }
}

// streamAll returns what Stream hands on, keyed by number, and the numbers
// in the order they came.
func streamAll(t *testing.T, src csvimport.Source) (map[string]csvimport.Document, []string, csvimport.Stats) {
	t.Helper()
	got := map[string]csvimport.Document{}
	var order []string
	st, err := csvimport.Stream(context.Background(), src, func(d csvimport.Document) error {
		if _, dup := got[d.Number]; dup {
			t.Errorf("document %s handed on twice", d.Number)
		}
		got[d.Number] = d
		order = append(order, d.Number)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return got, order, st
}

// TestStreamSameDocuments: Stream hands on exactly the documents Collect
// reads, whole (a document split by another one included), each once, on
// the crafted file, a file with malformed rows and the real file.
func TestStreamSameDocuments(t *testing.T) {
	t.Parallel()
	real := func() string {
		b, err := os.ReadFile(testfixture.RealFile(t))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	tests := []struct {
		name      string
		give      func() string
		wantOrder []string // the order of their last rows, when checked
	}{
		{"crafted", func() string { return crafted }, []string{"536365", "C536379", "A563185", "536366"}},
		{"bad rows", func() string { return badFile }, nil},
		{"split three times", func() string {
			return header + "1,P,X,1,2011-01-02 10:00:00,1,,France\n2,P,X,1,2011-01-02 10:00:00,1,,France\n1,P,X,1,2011-01-02 10:00:00,1,,France\n" +
				"3,P,X,1,2011-01-02 10:00:00,1,,France\n1,P,X,1,2011-01-02 10:00:00,1,,France\n2,P,X,1,2011-01-02 10:00:00,1,,France\n"
		}, []string{"3", "1", "2"}},
		{"real file", real, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			content := tt.give()
			want, wantSt, err := csvimport.Collect(strings.NewReader(content))
			if err != nil {
				t.Fatal(err)
			}
			got, order, st := streamAll(t, stringSource(content))
			if st != wantSt {
				t.Errorf("stats = %+v, want %+v", st, wantSt)
			}
			if len(got) != len(want) {
				t.Fatalf("%d documents, want %d", len(got), len(want))
			}
			for _, w := range want {
				if g, ok := got[w.Number]; !ok || !reflect.DeepEqual(g, w) {
					t.Fatalf("document %s = %+v, want %+v", w.Number, g, w)
				}
			}
			if tt.wantOrder != nil && !reflect.DeepEqual(order, tt.wantOrder) {
				t.Errorf("order = %v, want %v", order, tt.wantOrder)
			}
		})
	}
}

// TestStreamInputChanged: a file that changes between the passes is
// reported, not imported half.
func TestStreamInputChanged(t *testing.T) {
	t.Parallel()
	opened := 0
	src := func() (io.ReadCloser, error) {
		opened++
		if opened == 1 {
			return io.NopCloser(strings.NewReader(crafted)), nil
		}
		return io.NopCloser(strings.NewReader(crafted + "536366,22634,HAND WARMER,6,2010-12-01 08:28:00,1.85,,Unspecified\n")), nil
	}
	_, err := csvimport.Stream(context.Background(), src, func(csvimport.Document) error { return nil })
	if err == nil || !strings.Contains(err.Error(), "changed") {
		t.Fatalf("err = %v, want the input changed", err)
	}
}

// TestStreamMemoryBounded streams 120,000 generated documents (gzip, made
// while read) and compares the live heap after 30,000 documents with the
// live heap at the end: it must not grow with the file. Collect of the same
// file holds all of it.
func TestStreamMemoryBounded(t *testing.T) {
	const docs = 120_000
	src := func() (io.ReadCloser, error) {
		pr, pw := io.Pipe()
		go func() {
			zw := gzip.NewWriter(pw)
			_, _ = io.WriteString(zw, header)
			for i := range docs {
				// Three lines per document; 1,000 distinct times.
				for j := range 3 {
					fmt.Fprintf(zw, "%06d,P%d,PRODUCT %d,%d,2011-01-%02d 10:%02d:00,1.25,%d,France\n", 100000+i, j, i%5000, j+1, 1+i%28, i%36, 12000+i%4000)
				}
			}
			pw.CloseWithError(zw.Close())
		}()
		return pr, nil
	}
	live := func() uint64 {
		runtime.GC()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		return m.HeapAlloc
	}
	var early, late uint64
	n := 0
	st, err := csvimport.Stream(context.Background(), src, func(d csvimport.Document) error {
		n++
		switch n {
		case docs / 10:
			early = live()
		case docs:
			late = live()
		}
		return nil
	})
	if err != nil || st.Documents != docs || st.Rows != 3*docs {
		t.Fatalf("stats %+v, err %v: want %d documents", st, err, docs)
	}
	t.Logf("live heap after %d documents: %d KiB; after %d: %d KiB", docs/10, early>>10, docs, late>>10)
	if late > early+early/2+(1<<20) {
		t.Errorf("live heap grew from %d KiB to %d KiB with the file", early>>10, late>>10)
	}
}
