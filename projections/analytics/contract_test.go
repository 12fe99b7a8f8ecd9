package analytics_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/orderstream/orderstream/consumers"
	"github.com/orderstream/orderstream/internal/readmodeltest"
	"github.com/orderstream/orderstream/internal/testenv"
	"github.com/orderstream/orderstream/projections/analytics"
	"github.com/orderstream/orderstream/schemas"
	"github.com/shopspring/decimal"
)

// TestContract runs the read-model contract suite on ClickHouse.
func TestContract(t *testing.T) {
	t.Parallel()
	readmodeltest.Run(t, contractModel{})
}

type contractModel struct{}

func (contractModel) ErrRejected() error { return analytics.ErrRejected }

func (contractModel) New(t *testing.T) readmodeltest.Instance {
	cfg := testConfig(t)
	rm, err := analytics.OpenReadModel(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = rm.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := rm.Setup(ctx); err != nil {
		t.Fatalf("set up %s: %v", cfg.Database, err)
	}
	return &contractInstance{conn: analytics.StoreConn(rm.Store()), ReadModel: rm}
}

func (contractModel) Unreachable(t *testing.T) consumers.Sink {
	return newSink(t, analytics.Config{Addr: "127.0.0.1:1", Database: testenv.Name("a"), DialTimeout: time.Second})
}

// contractInstance is one database; its ReadModel (the projections.ReadModel
// that rebuild and the generations commands use) gives the generation verbs
// and the sinks.
type contractInstance struct {
	conn driver.Conn
	*analytics.ReadModel
}

func (in *contractInstance) Sink(t *testing.T, n uint32) consumers.Sink {
	s, closeSink, err := in.ReadModel.Sink(t.Context(), n)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = closeSink() })
	return s
}

func (in *contractInstance) Facts(ctx context.Context, n uint32) (readmodeltest.Facts, error) {
	rows, err := in.conn.Query(ctx, "SELECT order_id, toString(total), toUInt64(line_count), toString(status), toInt64(version) FROM ("+
		analytics.OrdersQuery(in.Store(), n)+")")
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := readmodeltest.Facts{}
	for rows.Next() {
		var id, total, status string
		var lines uint64
		var version int64
		if err := rows.Scan(&id, &total, &lines, &status, &version); err != nil {
			return nil, err
		}
		d, err := decimal.NewFromString(total)
		if err != nil {
			return nil, fmt.Errorf("order %s: total %q: %w", id, total, err)
		}
		out[id] = readmodeltest.Fact{Version: version, Status: schemas.Status(status), Total: d.String(), Lines: int(lines)}
	}
	return out, rows.Err()
}
