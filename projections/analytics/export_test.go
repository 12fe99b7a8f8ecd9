package analytics

import (
	"context"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

// NewSinkOn returns a Sink for cfg over conn (cfg.Addr unused), for the
// compatibility suite's connections. The Sink closes conn on Close.
func NewSinkOn(conn driver.Conn, cfg Config, opts ...SinkOption) (*Sink, error) {
	cfg.setDefaults()
	return newSink(cfg, conn, opts...)
}

// InsertColumns exposes the column-wise insert data of rows to the external
// benchmark: per table its name (without generation), column list, row
// count and one slice per column.
func InsertColumns(r *Rows) (names, columns []string, counts []int, values [][]any) {
	for _, t := range r.tables() {
		names, columns, counts, values = append(names, t.base), append(columns, t.columns), append(counts, t.n), append(values, t.values)
	}
	return names, columns, counts, values
}

// StoreConn returns the connection st runs its statements on.
func StoreConn(st *Store) driver.Conn { return st.conn }

// OrdersQuery returns, for the contract suite, a SELECT of the orders
// view's columns over generation n, or of the stable orders view itself
// (what readers see) when n is 0.
func OrdersQuery(st *Store, n uint32) string {
	if n == 0 {
		return "SELECT * FROM " + st.table("orders")
	}
	return st.views(n)["orders"]
}

// FillRollup runs the statement of migration generation/0002 that fills
// generation gen's top-products rollup from its lines (every month).
func FillRollup(ctx context.Context, conn driver.Conn, database string, gen uint32) error {
	s := &Store{db: database}
	return conn.Exec(ctx, rollupInsert(s.table(tableName("order_lines", gen)), s.table(tableName("product_months", gen)), ""))
}
