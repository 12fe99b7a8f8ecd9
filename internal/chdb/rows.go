package chdb

import (
	"database/sql"
	"fmt"
	"io"
	"reflect"

	chproto "github.com/ClickHouse/ch-go/proto"
	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/ClickHouse/clickhouse-go/v2/lib/proto"
)

func chReader(r io.Reader) *chproto.Reader { return chproto.NewReader(r) }

// rows walks decoded blocks like clickhouse-go's rows: Next advances, Scan
// reads the current row through the columns' own ScanRow.
type rows struct {
	blocks []*proto.Block
	b      int // current block
	row    int // 1-based row in the current block; 0 before the first Next
	closed bool
}

func (r *rows) Next() bool {
	if r.closed {
		return false
	}
	for r.b < len(r.blocks) {
		if r.row < r.blocks[r.b].Rows() {
			r.row++
			return true
		}
		r.b, r.row = r.b+1, 0
	}
	r.closed = true
	return false
}

func (r *rows) Scan(dest ...any) error {
	if r.b >= len(r.blocks) || r.row == 0 {
		return io.EOF
	}
	block := r.blocks[r.b]
	if len(block.Columns) != len(dest) {
		return &clickhouse.OpError{Op: "Scan", Err: fmt.Errorf("expected %d destination arguments in Scan, not %d", len(block.Columns), len(dest))}
	}
	for i, d := range dest {
		if err := block.Columns[i].ScanRow(d, r.row-1); err != nil {
			return &clickhouse.OpError{Err: err, ColumnName: block.ColumnsNames()[i]}
		}
	}
	return nil
}

func (r *rows) ScanStruct(any) error { return fmt.Errorf("ScanStruct: %w", errUnsupported) }

func (r *rows) Totals(...any) error { return sql.ErrNoRows }

func (r *rows) Columns() []string {
	if len(r.blocks) == 0 {
		return nil
	}
	return r.blocks[0].ColumnsNames()
}

func (r *rows) ColumnTypes() []driver.ColumnType {
	if len(r.blocks) == 0 {
		return nil
	}
	var out []driver.ColumnType
	for _, c := range r.blocks[0].Columns {
		out = append(out, columnType{c.Name(), string(c.Type()), c.ScanType()})
	}
	return out
}

type columnType struct {
	name, typ string
	scan      reflect.Type
}

func (c columnType) Name() string             { return c.name }
func (c columnType) Nullable() bool           { return len(c.typ) > 9 && c.typ[:9] == "Nullable(" }
func (c columnType) ScanType() reflect.Type   { return c.scan }
func (c columnType) DatabaseTypeName() string { return c.typ }

func (r *rows) Close() error { r.closed = true; return nil }

func (r *rows) Err() error { return nil }

func (r *rows) HasData() bool {
	if r.closed {
		return false
	}
	for b := r.b; b < len(r.blocks); b++ {
		if (b == r.b && r.row < r.blocks[b].Rows()) || (b > r.b && r.blocks[b].Rows() > 0) {
			return true
		}
	}
	return false
}

// row is QueryRow's result, as clickhouse-go's: sql.ErrNoRows when empty.
type row struct {
	err  error
	rows *rows
}

func (r *row) Err() error { return r.err }

func (r *row) Scan(dest ...any) error {
	if r.err != nil {
		return r.err
	}
	if !r.rows.Next() {
		return sql.ErrNoRows
	}
	if err := r.rows.Scan(dest...); err != nil {
		return err
	}
	return r.rows.Close()
}

func (r *row) ScanStruct(any) error { return fmt.Errorf("ScanStruct: %w", errUnsupported) }
