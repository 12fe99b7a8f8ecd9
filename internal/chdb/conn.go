package chdb

import (
	"bufio"
	"bytes"
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/column"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/ClickHouse/clickhouse-go/v2/lib/proto"
)

//go:embed server.py
var serverPy []byte

// DefaultPython is the interpreter Start runs when Config.Python is empty.
const DefaultPython = "python3"

// ErrUnavailable is returned by Start when the interpreter or the chdb
// module is missing; the message names the install command.
var ErrUnavailable = errors.New("chdb unavailable")

// Config says where the engine runs.
type Config struct {
	// Dir holds the engine's state (databases, tables) and the insert
	// blocks; required. State persists across Conns on the same Dir.
	Dir string
	// Python is the interpreter with chdb-core installed; default python3.
	Python string
}

// Conn is a driver.Conn over one chDB session. Safe for concurrent use:
// statements are serialised (one at a time). ctx cancellation is checked
// before a statement is sent, not while it runs.
type Conn struct {
	// Conn is nil: embedded only so that methods clickhouse-go adds to the
	// interface in later releases do not break the build. Every method of
	// v2.51's interface is implemented below.
	driver.Conn

	dir     string
	cmd     *exec.Cmd
	stdin   io.WriteCloser
	stdout  *bufio.Reader
	stderr  *bytes.Buffer
	version proto.ServerHandshake

	mu     sync.Mutex
	seq    int // insert block files written
	closed bool
	err    error // the process broke: every later call fails with it
}

// Start runs the engine process on cfg.Dir and reads the engine's version
// and time zone (what a server's handshake tells clickhouse-go). It fails
// with ErrUnavailable when the interpreter or chdb is missing.
func Start(cfg Config) (*Conn, error) {
	if cfg.Dir == "" {
		return nil, errors.New("chdb: Config.Dir is required")
	}
	if cfg.Python == "" {
		cfg.Python = DefaultPython
	}
	script := filepath.Join(cfg.Dir, "server.py")
	if err := os.MkdirAll(filepath.Join(cfg.Dir, "blocks"), 0o755); err != nil {
		return nil, fmt.Errorf("chdb: %w", err)
	}
	if err := os.WriteFile(script, serverPy, 0o644); err != nil {
		return nil, fmt.Errorf("chdb: %w", err)
	}
	if _, err := exec.LookPath(cfg.Python); err != nil {
		return nil, fmt.Errorf("%w: interpreter %q: %v (install Python 3 and `pip install chdb-core`)", ErrUnavailable, cfg.Python, err)
	}
	c := &Conn{dir: cfg.Dir, stderr: &bytes.Buffer{}}
	c.cmd = exec.Command(cfg.Python, script, filepath.Join(cfg.Dir, "state"))
	c.cmd.Stderr = &lockedWriter{w: c.stderr}
	var err error
	if c.stdin, err = c.cmd.StdinPipe(); err != nil {
		return nil, fmt.Errorf("chdb: %w", err)
	}
	out, err := c.cmd.StdoutPipe()
	if err != nil {
		return nil, fmt.Errorf("chdb: %w", err)
	}
	c.stdout = bufio.NewReaderSize(out, 1<<20)
	if err := c.cmd.Start(); err != nil {
		return nil, fmt.Errorf("chdb: start %s: %w", cfg.Python, err)
	}
	var ver, tz string
	if err := c.QueryRow(context.Background(), "SELECT version(), timezone()").Scan(&ver, &tz); err != nil {
		_ = c.Close()
		if c.cmd.ProcessState != nil && c.cmd.ProcessState.ExitCode() == 3 {
			return nil, fmt.Errorf("%w: %s", ErrUnavailable, strings.TrimSpace(c.stderr.String()))
		}
		return nil, fmt.Errorf("chdb: first statement: %w", err)
	}
	loc, err := time.LoadLocation(tz)
	if err != nil {
		_ = c.Close()
		return nil, fmt.Errorf("chdb: engine time zone %q: %w", tz, err)
	}
	c.version = proto.ServerHandshake{Name: "chDB", DisplayName: "chDB " + ver, Version: proto.ParseVersion(ver), Timezone: loc}
	return c, nil
}

type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

type response struct {
	Error string `json:"error"`
	Code  int32  `json:"code"`
	Size  int    `json:"size"`
}

// run sends one statement and returns its result's Native bytes.
func (c *Conn) run(ctx context.Context, sql string) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil, errors.New("chdb: connection closed")
	}
	if c.err != nil {
		return nil, c.err
	}
	req, err := json.Marshal(map[string]string{"sql": sql})
	if err != nil {
		return nil, fmt.Errorf("chdb: %w", err)
	}
	if _, err := c.stdin.Write(append(req, '\n')); err != nil {
		return nil, c.broken(err)
	}
	line, err := c.stdout.ReadBytes('\n')
	if err != nil {
		return nil, c.broken(err)
	}
	var res response
	if err := json.Unmarshal(line, &res); err != nil {
		return nil, c.broken(fmt.Errorf("response %q: %w", line, err))
	}
	payload := make([]byte, res.Size)
	if _, err := io.ReadFull(c.stdout, payload); err != nil {
		return nil, c.broken(err)
	}
	if res.Error != "" || res.Code != 0 {
		return nil, &clickhouse.Exception{Code: res.Code, Name: "DB::Exception", Message: res.Error}
	}
	return payload, nil
}

func (c *Conn) broken(err error) error {
	c.err = fmt.Errorf("chdb process: %w (stderr: %s)", err, tail(c.stderr.String(), 2000))
	return c.err
}

func tail(s string, n int) string {
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return strings.TrimSpace(s)
}

// bound returns query with args bound the way clickhouse-go binds them for
// the native protocol, in the engine's time zone.
func (c *Conn) bound(query string, args []any) (string, error) {
	tz := c.version.Timezone
	if tz == nil {
		tz = time.UTC
	}
	return bind(tz, query, args...)
}

// Exec runs a statement and discards its result.
func (c *Conn) Exec(ctx context.Context, query string, args ...any) error {
	sql, err := c.bound(query, args)
	if err != nil {
		return err
	}
	_, err = c.run(ctx, sql)
	return err
}

// Query runs a statement and returns its rows, decoded by clickhouse-go's columns.
func (c *Conn) Query(ctx context.Context, query string, args ...any) (driver.Rows, error) {
	sql, err := c.bound(query, args)
	if err != nil {
		return nil, err
	}
	payload, err := c.run(ctx, sql)
	if err != nil {
		return nil, err
	}
	blocks, err := c.decode(payload)
	if err != nil {
		return nil, err
	}
	return &rows{blocks: blocks}, nil
}

// QueryRow is Query for one row; Scan returns sql.ErrNoRows when there is none.
func (c *Conn) QueryRow(ctx context.Context, query string, args ...any) driver.Row {
	r, err := c.Query(ctx, query, args...)
	if err != nil {
		return &row{err: err}
	}
	return &row{rows: r.(*rows)}
}

// decode splits a Native payload into blocks.
func (c *Conn) decode(payload []byte) ([]*proto.Block, error) {
	var out []*proto.Block
	// ch-go's reader buffers: it reads through br itself (a bufio.Reader at
	// least as large as its own), so br tells where the payload ends.
	br := bufio.NewReaderSize(bytes.NewReader(payload), 1<<20)
	rd := chReader(br)
	for {
		if _, err := br.Peek(1); err != nil {
			break
		}
		b := proto.NewBlock()
		b.ServerContext = c.serverContext()
		if err := b.Decode(rd, 0); err != nil {
			return nil, fmt.Errorf("chdb: decode Native result: %w", err)
		}
		out = append(out, b)
	}
	return out, nil
}

func (c *Conn) serverContext() *column.ServerContext {
	return &column.ServerContext{
		VersionMajor: c.version.Version.Major, VersionMinor: c.version.Version.Minor, VersionPatch: c.version.Version.Patch,
		Timezone: c.version.Timezone,
	}
}

// ServerVersion returns the engine's version, as a server's handshake would.
func (c *Conn) ServerVersion() (*driver.ServerVersion, error) {
	v := c.version
	return &v, nil
}

// Ping runs SELECT 1.
func (c *Conn) Ping(ctx context.Context) error { return c.Exec(ctx, "SELECT 1") }

// Contributors returns nil.
func (c *Conn) Contributors() []string { return nil }

// Stats reports one open connection.
func (c *Conn) Stats() driver.Stats { return driver.Stats{MaxOpenConns: 1, MaxIdleConns: 1, Open: 1} }

var errUnsupported = errors.New("not supported by the chdb test connection")

// Select is not supported.
func (c *Conn) Select(context.Context, any, string, ...any) error {
	return fmt.Errorf("Select: %w", errUnsupported)
}

// QueryFormat is not supported (as over clickhouse-go's native protocol).
func (c *Conn) QueryFormat(context.Context, string, string, ...any) (io.ReadCloser, error) {
	return nil, fmt.Errorf("QueryFormat: %w", errUnsupported)
}

// InsertFormat is not supported (as over clickhouse-go's native protocol).
func (c *Conn) InsertFormat(context.Context, string, string, io.Reader) error {
	return fmt.Errorf("InsertFormat: %w", errUnsupported)
}

// AsyncInsert is not supported.
func (c *Conn) AsyncInsert(context.Context, string, bool, ...any) error {
	return fmt.Errorf("AsyncInsert: %w", errUnsupported)
}

// Close ends the engine process (its state stays in Config.Dir). Idempotent.
func (c *Conn) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil
	}
	c.closed = true
	_ = c.stdin.Close()
	done := make(chan error, 1)
	go func() { done <- c.cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil && c.err == nil {
			return fmt.Errorf("chdb process: %w (stderr: %s)", err, tail(c.stderr.String(), 2000))
		}
		return nil
	case <-time.After(30 * time.Second):
		_ = c.cmd.Process.Kill()
		<-done
		return errors.New("chdb process did not exit within 30 s of its stdin closing: killed")
	}
}
