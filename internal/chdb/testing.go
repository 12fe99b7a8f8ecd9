package chdb

import (
	"errors"
	"os"
	"testing"

	"github.com/orderstream/orderstream/internal/testenv"
)

// EnvPython names the interpreter with chdb-core installed; default python3.
const EnvPython = "ORDERSTREAM_CHDB_PYTHON"

// StartForTest starts a Conn on a temporary directory of t, closed at
// cleanup. When Python or chdb is missing the test is skipped, or fails
// under CI=true (`make test` installs chdb-core: deploy/local/chdb.sh).
func StartForTest(t testing.TB) *Conn {
	t.Helper()
	c, err := Start(Config{Dir: t.TempDir(), Python: os.Getenv(EnvPython)})
	if errors.Is(err, ErrUnavailable) {
		msg := err.Error() + " (deploy/local/chdb.sh installs it)"
		if testenv.InCI() {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := c.Close(); err != nil {
			t.Errorf("close chdb: %v", err)
		}
	})
	return c
}
