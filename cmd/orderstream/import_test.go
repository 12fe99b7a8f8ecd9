package main

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/orderstream/orderstream/internal/connect"
	"github.com/orderstream/orderstream/internal/testenv"
	"github.com/orderstream/orderstream/schemas"
)

// TestImportCommandReportsBadRows runs the import command on a file with
// malformed rows (invalid UTF-8 and a quote never closed among them): every
// bad row is reported as FILE:LINE: column …, the good documents are
// imported, the command fails with the counts, and a re-run reports them as
// already present.
func TestImportCommandReportsBadRows(t *testing.T) {
	g := &globals{conn: connect.Settings{Postgres: connect.Postgres{URL: testenv.NewDatabase(t)}}, eventVersion: schemas.CurrentVersion, log: slog.New(slog.DiscardHandler)}
	path := filepath.Join(t.TempDir(), "orders.csv")
	content := "InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country\n" +
		"536365,85123A,WHITE HANGING HEART T-LIGHT HOLDER,6,2010-12-01 08:26:00,2.55,17850,United Kingdom\n" +
		"536370,22728,ALARM CLOCK BAKELIKE PINK,abc,2010-12-01 08:45:00,3.75,12583,France\n" +
		"536371,22086,PAPER CHAIN KIT,80,2010-12-01 09:00:00,2.5.5,13748,United Kingdom\n" +
		"536372,22632,HAND WARMER \xff,6,2010-12-01 09:01:00,1.85,17850,United Kingdom\n" +
		"536373,21730,\"GLASS STAR FROSTED,6,2010-12-01 09:02:00,4.25,17850,United Kingdom\n" +
		"C536379,D,Discount,-1,2010-12-01 09:41:00,27.50,14527,United Kingdom\n"
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	err := runImport(context.Background(), g, importOptions{workers: 2, progress: "never", retryTimeout: time.Minute}, path, &stdout, &stderr)
	var failed *importFailed
	if !errors.As(err, &failed) || failed.badRows != 4 || failed.docs != 4 || exitCode(err) != 1 {
		t.Fatalf("err = %v (exit %d), want 4 bad rows in 4 documents, exit 1", err, exitCode(err))
	}
	wantLines := []string{
		path + `:3: column Quantity: "abc" is not an integer`,
		path + `:4: column UnitPrice: "2.5.5" is not a price in GBP (a decimal number with at most 3 decimals, e.g. 2.55)`,
		path + `:5: column Description: "HAND WARMER \xff" is not valid UTF-8 (byte 0xff at byte 13)`,
		path + `:6: column Description: "GLASS STAR FROSTED,6,2010-12-01 09:02:00…" has a quote that is not closed on its line (a quoted field may span lines only when the row then has 8 columns)`,
	}
	if got := strings.Split(strings.TrimSpace(stderr.String()), "\n"); strings.Join(got, "\n") != strings.Join(wantLines, "\n") {
		t.Errorf("stderr:\n%s\nwant:\n%s", stderr.String(), strings.Join(wantLines, "\n"))
	}
	if !strings.Contains(stdout.String(), "6 documents: 2 imported, 0 already present, 4 refused (4 malformed rows, 0 other rows of refused documents); 4 events, 2 lines") {
		t.Errorf("summary = %q", stdout.String())
	}

	stdout.Reset()
	stderr.Reset()
	err = runImport(context.Background(), g, importOptions{workers: 2, progress: "never", retryTimeout: time.Minute}, path, &stdout, &stderr)
	if !errors.As(err, &failed) {
		t.Fatalf("re-run: err = %v", err)
	}
	if !strings.Contains(stdout.String(), "0 imported, 2 already present, 4 refused (4 malformed rows, 0 other rows of refused documents); 0 events") {
		t.Errorf("re-run summary = %q, want the good documents already present", stdout.String())
	}
}

func TestImportCommandUsage(t *testing.T) {
	g := &globals{conn: connect.Settings{Postgres: connect.Postgres{URL: "postgres://127.0.0.1:1/x"}}, eventVersion: schemas.CurrentVersion, log: slog.New(slog.DiscardHandler)}
	tests := []struct {
		name string
		opts importOptions
		path string
	}{
		{"zero workers", importOptions{workers: 0, progress: "never", retryTimeout: time.Minute}, "x.csv"},
		{"bad progress", importOptions{workers: 1, progress: "sometimes", retryTimeout: time.Minute}, "x.csv"},
		{"zero retry timeout", importOptions{workers: 1, progress: "never"}, "x.csv"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			err := runImport(context.Background(), g, tt.opts, tt.path, &out, &out)
			if exitCode(err) != 2 {
				t.Errorf("err = %v (exit %d), want a usage error (exit 2)", err, exitCode(err))
			}
		})
	}
}

// TestImportMissingFile: a file that is not there is a runtime failure
// (exit 1) naming the file, not a usage error (exit 2): the command line
// was well formed. Through the root command, as a user runs it.
func TestImportMissingFile(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "missing.csv")
	root := newRootCmd()
	var out, errOut bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&errOut)
	root.SetArgs([]string{"import", missing, "--pg-url", "postgres://127.0.0.1:1/x", "--progress", "never"})
	err := root.ExecuteContext(context.Background())
	if code := exitCode(err); code != 1 {
		t.Fatalf("exit %d (err %v), want 1 (a runtime failure)", code, err)
	}
	if want := "import " + missing + ": no such file or directory"; err.Error() != want {
		t.Errorf("error %q, want %q", err, want)
	}
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("error %v does not wrap fs.ErrNotExist", err)
	}
}
