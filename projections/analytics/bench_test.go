package analytics_test

import (
	"context"
	"fmt"
	"syscall"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/orderstream/orderstream/consumers"
	"github.com/orderstream/orderstream/internal/testenv"
	"github.com/orderstream/orderstream/internal/testfixture"
	"github.com/orderstream/orderstream/projections/analytics"
	"github.com/twmb/franz-go/pkg/kadm"
)

// BenchmarkKafkaToClickHouse measures the real file's 51,797 events from a
// Kafka topic into ClickHouse through the consumer runtime and the Sink
// (from the daemon's start until the group has committed every offset),
// beside raw clickhouse-go batch inserts of the same rows (built
// beforehand, one batch per table per 5,000 events, into a fresh database;
// once row by row with Batch.Append, once column by column with
// Batch.Column(i).Append, as the sink does), in the same run. It prints the
// rates, the CPU time used in each phase (this process's and the ClickHouse
// server's query threads') and the ratio to the faster raw insert, and
// reports them as metrics (events/s, raw_events/s, ratio_%). Run it once:
//
//	go test -run '^$' -bench BenchmarkKafkaToClickHouse -benchtime 1x -count 1 -timeout 30m ./projections/analytics/
func BenchmarkKafkaToClickHouse(b *testing.B) {
	events := testfixture.RealEvents(b)
	brokers := testenv.KafkaBrokers(b)
	topic := testfixture.ProduceTopic(b, brokers, events)
	adm := admin(b, brokers)
	deleteTopicAtCleanup(b, adm, consumers.DLQTopicFor(topic))
	var rows analytics.Rows
	for _, e := range events {
		if err := rows.Add(e, "GBP"); err != nil {
			b.Fatal(err)
		}
	}
	_, probe := freshDatabase(b) // a connection for the server's CPU counters
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		// Pipeline: runtime + sink.
		cfg := testConfig(b)
		group := testenv.Name("bench")
		start, cpu0 := time.Now(), sampleCPU(b, probe)
		d := startDaemon(b, consumers.Config{Brokers: brokers, Topic: topic, Group: group, Projection: "analytics"}, newSink(b, cfg))
		drain(b, adm, group, topic)
		pipeline, pipelineCPU := time.Since(start), sampleCPU(b, probe).sub(cpu0)
		if err := d.stop(); err != nil {
			b.Fatal(err)
		}
		q, _ := newQueries(b, cfg)
		sum, err := q.Summary(context.Background(), analytics.Filter{})
		if err != nil || sum.NetRevenue.String() != testfixture.RealNetGBP {
			b.Fatalf("after the pipeline: net revenue %s, %v", sum.NetRevenue, err)
		}

		// Raw: the same rows, batch inserts only, in both of clickhouse-go's
		// ways; the ratio is against the faster.
		cpu0 = sampleCPU(b, probe)
		rawRows := rawInsert(b, rows, len(events))
		cpu1 := sampleCPU(b, probe)
		rawCols := rawInsertColumns(b, rows, len(events))
		rowsCPU, colsCPU := cpu1.sub(cpu0), sampleCPU(b, probe).sub(cpu1)
		raw := min(rawRows, rawCols)

		pr := float64(len(events)) / pipeline.Seconds()
		rr := float64(len(events)) / raw.Seconds()
		fmt.Printf("analytics: %d events Kafka → runtime → sink → ClickHouse in %s = %.0f events/s (%s)\n",
			len(events), pipeline.Round(time.Millisecond), pr, pipelineCPU)
		fmt.Printf("analytics: raw clickhouse-go batch insert of the same %d rows: row by row (Append) %s = %.0f events/s (%s); column by column (Column.Append) %s = %.0f events/s (%s)\n",
			rows.Len(), rawRows.Round(time.Millisecond), float64(len(events))/rawRows.Seconds(), rowsCPU,
			rawCols.Round(time.Millisecond), float64(len(events))/rawCols.Seconds(), colsCPU)
		fmt.Printf("analytics: ratio %.1f%% of the faster raw insert\n", 100*pr/rr)
		b.ReportMetric(pr, "events/s")
		b.ReportMetric(rr, "raw_events/s")
		b.ReportMetric(100*pr/rr, "ratio_%")
	}
}

// cpuSample is CPU time used so far: by this process (client) and by the
// ClickHouse server's queries (user + system time of query threads, from
// system.events; background merges not included).
type cpuSample struct{ client, server time.Duration }

func (c cpuSample) sub(o cpuSample) cpuSample {
	return cpuSample{c.client - o.client, c.server - o.server}
}

func (c cpuSample) String() string {
	return fmt.Sprintf("CPU: client %s, server queries %s", c.client.Round(time.Millisecond), c.server.Round(time.Millisecond))
}

func sampleCPU(b *testing.B, conn driver.Conn) cpuSample {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	var micros uint64
	err := conn.QueryRow(context.Background(),
		"SELECT sum(value) FROM system.events WHERE event IN ('UserTimeMicroseconds', 'SystemTimeMicroseconds')").Scan(&micros)
	if err != nil {
		b.Fatal(err)
	}
	return cpuSample{client: time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), server: time.Duration(micros) * time.Microsecond}
}

// drain polls the group's committed offsets every 20 ms until it is at the
// end of every partition.
func drain(b *testing.B, adm *kadm.Client, group, topic string) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	ends, err := adm.ListEndOffsets(ctx, topic)
	if err != nil {
		b.Fatal(err)
	}
	for ctx.Err() == nil {
		committed, err := adm.FetchOffsets(ctx, group)
		if err == nil {
			done := true
			ends.Each(func(o kadm.ListedOffset) {
				if c, ok := committed.Lookup(topic, o.Partition); !ok || c.At < o.Offset {
					done = false
				}
			})
			if done {
				return
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	b.Fatalf("group %s did not drain %s", group, topic)
}

// freshDatabase migrates a database of the benchmark's own and returns its
// config and a connection (closed at cleanup).
func freshDatabase(b *testing.B) (analytics.Config, driver.Conn) {
	cfg := testConfig(b)
	conn, err := analytics.Open(cfg)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = conn.Close() })
	st, err := analytics.NewStore(conn, cfg.Database)
	if err != nil {
		b.Fatal(err)
	}
	if err := st.Migrate(context.Background()); err != nil {
		b.Fatal(err)
	}
	return cfg, conn
}

// rawInsert inserts rows into a fresh database's generation 1 with plain
// clickhouse-go batches (chunks of about 5,000 events' rows per table) and
// returns the time the inserts took.
func rawInsert(b *testing.B, rows analytics.Rows, events int) time.Duration {
	cfg, conn := freshDatabase(b)
	ctx := context.Background()
	n := (events + 4999) / 5000
	send := func(table, cols string, total int, appendRow func(batchAppender, int) error) {
		per := (total + n - 1) / n
		for lo := 0; lo < total; lo += per {
			bt, err := conn.PrepareBatch(ctx, "INSERT INTO `"+cfg.Database+"`."+table+" "+cols)
			if err != nil {
				b.Fatal(err)
			}
			for i := lo; i < min(lo+per, total); i++ {
				if err := appendRow(bt, i); err != nil {
					b.Fatal(err)
				}
			}
			if err := bt.Send(); err != nil {
				b.Fatal(err)
			}
		}
	}
	start := time.Now()
	send("order_lines_g1", "(order_id, line_no, order_number, kind, customer_id, country, stock_code, description, quantity, unit_price, amount, placed_at, version)",
		len(rows.Lines), func(bt batchAppender, i int) error {
			r := &rows.Lines[i]
			return bt.Append(r.OrderID, r.LineNo, r.OrderNumber, string(r.Kind), r.CustomerID, r.Country, r.StockCode,
				r.Description, r.Quantity, r.UnitPrice, r.Amount, r.PlacedAt, r.Version)
		})
	send("orders_g1", "(order_id, order_number, kind, customer_id, country, currency, total, line_count, placed_at, version)",
		len(rows.Orders), func(bt batchAppender, i int) error {
			r := &rows.Orders[i]
			return bt.Append(r.OrderID, r.OrderNumber, string(r.Kind), r.CustomerID, r.Country, r.Currency, r.Total, r.Lines, r.PlacedAt, r.Version)
		})
	send("order_status_g1", "(order_id, status, event_type, amount, updated_at, version)",
		len(rows.Statuses), func(bt batchAppender, i int) error {
			r := &rows.Statuses[i]
			return bt.Append(r.OrderID, string(r.Status), r.EventType, r.Amount, r.UpdatedAt, r.Version)
		})
	return time.Since(start)
}

type batchAppender interface{ Append(v ...any) error }

// rawInsertColumns inserts rows like rawInsert, but column by column: the
// columns are built beforehand (untimed), in chunks of about 5,000 events.
func rawInsertColumns(b *testing.B, rows analytics.Rows, events int) time.Duration {
	n := (events + 4999) / 5000
	// Chunks of the rows, each converted to columns before the clock starts.
	type chunk struct {
		names, columns []string
		values         [][]any
	}
	var chunks []chunk
	for k := 0; k < n; k++ {
		part := analytics.Rows{
			Lines:    rows.Lines[k*len(rows.Lines)/n : (k+1)*len(rows.Lines)/n],
			Orders:   rows.Orders[k*len(rows.Orders)/n : (k+1)*len(rows.Orders)/n],
			Statuses: rows.Statuses[k*len(rows.Statuses)/n : (k+1)*len(rows.Statuses)/n],
		}
		names, columns, _, values := analytics.InsertColumns(&part)
		chunks = append(chunks, chunk{names, columns, values})
	}
	cfg, conn := freshDatabase(b)
	ctx := context.Background()
	start := time.Now()
	for t := 0; t < 3; t++ { // table by table, as rawInsert
		for _, c := range chunks {
			bt, err := conn.PrepareBatch(ctx, "INSERT INTO `"+cfg.Database+"`."+c.names[t]+"_g1 "+c.columns[t])
			if err != nil {
				b.Fatal(err)
			}
			for i, v := range c.values[t] {
				if err := bt.Column(i).Append(v); err != nil {
					b.Fatal(err)
				}
			}
			if err := bt.Send(); err != nil {
				b.Fatal(err)
			}
		}
	}
	return time.Since(start)
}
