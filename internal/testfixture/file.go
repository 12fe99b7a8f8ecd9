package testfixture

import (
	"bufio"
	"compress/gzip"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/orderstream/orderstream/internal/testenv"
	"github.com/orderstream/orderstream/producer/csvimport"
	"github.com/orderstream/orderstream/schemas"
)

// RealFileRel is the real input's path relative to the module root.
const RealFileRel = "../shared/data/online_retail.csv.gz"

// Figures of the real file (shared/data/README.md and the domain facts).
const (
	RealLines     = 541909
	RealDocuments = 25900
	RealSales     = 22061
	RealCredits   = 3836
	RealAdjusts   = 3
	RealEventsN   = 2*RealSales + 2*RealCredits + RealAdjusts // 51,797
	RealNetGBP    = "9747747.934"                             // Σ quantity × unit price over every line
)

// ModuleRoot returns the directory holding go.mod, found by walking up from
// the working directory (a test's working directory is its package's).
func ModuleRoot(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatalf("working directory: %v", err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatalf("no go.mod in %s or any parent", dir)
		}
		dir = parent
	}
}

// RealFile returns the absolute path of the real input. When the file is
// missing the test is skipped, or fails under CI=true.
func RealFile(t testing.TB) string {
	t.Helper()
	p := filepath.Join(ModuleRoot(t), RealFileRel)
	if _, err := os.Stat(p); err != nil {
		msg := "real input missing (" + p + "): it lives in shared/data beside the repository"
		if testenv.InCI() {
			t.Fatal(msg + ": " + err.Error())
		}
		t.Skip(msg)
	}
	return p
}

// SampleFile writes the header and the first rows lines of the real file
// to a plain CSV in t's temporary directory and returns its path.
func SampleFile(t testing.TB, rows int) string {
	t.Helper()
	in, err := os.Open(RealFile(t))
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	zr, err := gzip.NewReader(in)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "sample.csv")
	out, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	sc := bufio.NewScanner(zr)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	w := bufio.NewWriter(out)
	for n := 0; n <= rows && sc.Scan(); n++ {
		if _, err := w.Write(append(sc.Bytes(), '\n')); err != nil {
			t.Fatal(err)
		}
	}
	if err := errors.Join(sc.Err(), w.Flush()); err != nil {
		t.Fatal(err)
	}
	return path
}

var realEvents struct {
	once   sync.Once
	events []schemas.Envelope
	err    error
}

// RealEvents returns every event of the real file (51,797): for each
// document in the order of its first line, its events in version order
// (order.placed, then order.paid or order.refunded), built by
// csvimport.Events through the real aggregate. Computed once per test binary;
// the slice is shared, do not modify it.
func RealEvents(t testing.TB) []schemas.Envelope {
	t.Helper()
	path := RealFile(t)
	realEvents.once.Do(func() {
		realEvents.events, realEvents.err = loadEvents(path)
	})
	if realEvents.err != nil {
		t.Fatalf("real events: %v", realEvents.err)
	}
	return realEvents.events
}

func loadEvents(path string) ([]schemas.Envelope, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	out := make([]schemas.Envelope, 0, RealEventsN)
	err = csvimport.ReadDocuments(f, func(d csvimport.Document) error {
		evs, err := csvimport.Events(d)
		if err != nil {
			return err
		}
		out = append(out, evs...)
		return nil
	})
	return out, err
}
