package chdb

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"

	chproto "github.com/ClickHouse/ch-go/proto"
	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/column"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/ClickHouse/clickhouse-go/v2/lib/proto"
)

// insertRE matches what PrepareBatch takes: INSERT INTO db.table (columns).
var insertRE = regexp.MustCompile(`(?is)^\s*INSERT\s+INTO\s+([^\s(]+)\s*(?:\(([^()]*)\))?\s*(?:VALUES)?\s*$`)

func unquote(ident string) string { return strings.Trim(strings.TrimSpace(ident), "`\"") }

// PrepareBatch prepares an INSERT of rows appended by the caller. Like the
// native protocol, it asks the engine for the columns' types (the server's
// header block) and builds clickhouse-go's own column buffers from them, so
// Append refuses the values clickhouse-go refuses. Send encodes the block in
// the Native format, as the native protocol does, and inserts it.
func (c *Conn) PrepareBatch(ctx context.Context, query string, _ ...driver.PrepareBatchOption) (driver.Batch, error) {
	m := insertRE.FindStringSubmatch(query)
	if m == nil {
		return nil, fmt.Errorf("chdb PrepareBatch %q: want INSERT INTO db.table (column, ...)", query)
	}
	db, table, ok := strings.Cut(m[1], ".")
	if !ok {
		db, table = "default", m[1]
	}
	db, table = unquote(db), unquote(table)
	var want []string
	if m[2] != "" {
		for _, name := range strings.Split(m[2], ",") {
			want = append(want, unquote(name))
		}
	}
	r, err := c.Query(ctx, "SELECT name, type FROM system.columns WHERE database = ? AND table = ? ORDER BY position", db, table)
	if err != nil {
		return nil, err
	}
	types := map[string]string{}
	var all []string
	for r.Next() {
		var name, typ string
		if err := r.Scan(&name, &typ); err != nil {
			return nil, err
		}
		types[name] = typ
		all = append(all, name)
	}
	if len(all) == 0 {
		return nil, &clickhouse.Exception{Code: 60, Name: "DB::Exception", Message: fmt.Sprintf("Table %s.%s does not exist. (UNKNOWN_TABLE)", db, table)}
	}
	if want == nil {
		want = all
	}
	block := proto.NewBlock()
	block.ServerContext = c.serverContext()
	for _, name := range want {
		typ, ok := types[name]
		if !ok {
			return nil, &clickhouse.Exception{Code: 16, Name: "DB::Exception", Message: fmt.Sprintf("No such column %s in table %s.%s. (NO_SUCH_COLUMN_IN_TABLE)", name, db, table)}
		}
		if err := block.AddColumn(name, column.Type(typ)); err != nil {
			return nil, err
		}
	}
	return &batch{c: c, ctx: ctx, insert: "INSERT INTO `" + db + "`.`" + table + "` (" + quoteAll(want) + ")", block: block}, nil
}

func quoteAll(names []string) string {
	q := make([]string, len(names))
	for i, n := range names {
		q[i] = "`" + n + "`"
	}
	return strings.Join(q, ", ")
}

// batch is a prepared insert (driver.Batch).
type batch struct {
	c      *Conn
	ctx    context.Context
	insert string
	block  *proto.Block
	sent   bool
	err    error
}

var errSent = errors.New("clickhouse: batch has already been sent")

func (b *batch) Abort() error {
	if b.sent {
		return errSent
	}
	b.sent = true
	return nil
}

func (b *batch) Append(v ...any) error {
	if b.sent {
		return errSent
	}
	if b.err != nil {
		return b.err
	}
	if err := b.block.Append(v...); err != nil {
		b.err = fmt.Errorf("%w: %w", clickhouse.ErrBatchInvalid, err)
		return err
	}
	return nil
}

func (b *batch) AppendStruct(any) error { return fmt.Errorf("AppendStruct: %w", errUnsupported) }

func (b *batch) Column(i int) driver.BatchColumn {
	if i < 0 || i >= len(b.block.Columns) {
		return &batchColumn{err: &clickhouse.OpError{Op: "batch.Column", Err: fmt.Errorf("invalid column index %d", i)}}
	}
	return &batchColumn{col: b.block.Columns[i], b: b}
}

// Flush inserts the rows appended so far and keeps the batch open.
func (b *batch) Flush() error {
	if b.sent {
		return errSent
	}
	if b.err != nil {
		return b.err
	}
	if b.block.Rows() == 0 {
		return nil
	}
	var buf chproto.Buffer
	if err := b.block.Encode(&buf, 0); err != nil {
		return err
	}
	b.c.mu.Lock()
	b.c.seq++
	path := filepath.Join(b.c.dir, "blocks", strconv.Itoa(b.c.seq)+".native")
	b.c.mu.Unlock()
	if err := os.WriteFile(path, buf.Buf, 0o644); err != nil {
		return fmt.Errorf("chdb: %w", err)
	}
	defer os.Remove(path)
	if _, err := b.c.run(b.ctx, b.insert+" FROM INFILE '"+path+"' FORMAT Native"); err != nil {
		return err
	}
	b.block.Reset()
	return nil
}

func (b *batch) Send() error {
	if err := b.Flush(); err != nil {
		return err
	}
	b.sent = true
	return nil
}

func (b *batch) IsSent() bool                { return b.sent }
func (b *batch) Rows() int                   { return b.block.Rows() }
func (b *batch) Columns() []column.Interface { return b.block.Columns }
func (b *batch) Close() error                { b.sent = true; return nil }

type batchColumn struct {
	col column.Interface
	b   *batch
	err error
}

// usable reports why the column takes no value, nil when it does.
func (c *batchColumn) usable() error {
	if c.err != nil {
		return c.err
	}
	if c.b.sent {
		return errSent
	}
	return nil
}

func (c *batchColumn) Append(v any) error {
	if err := c.usable(); err != nil {
		return err
	}
	_, err := c.col.Append(v)
	return err
}

func (c *batchColumn) AppendRow(v any) error {
	if err := c.usable(); err != nil {
		return err
	}
	return c.col.AppendRow(v)
}
