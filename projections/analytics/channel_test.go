package analytics_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/orderstream/orderstream/projections/analytics"
	"github.com/orderstream/orderstream/schemas"
	"github.com/shopspring/decimal"
)

func money(s string) schemas.Money { return schemas.NewMoney(decimal.RequireFromString(s), "GBP") }

// channelEvent returns the envelope of p placed as order id at (schema v2).
func channelEvent(t *testing.T, id string, at time.Time, p *schemas.OrderPlaced) schemas.Envelope {
	t.Helper()
	e, err := schemas.NewEnvelope(id, 1, at, p, schemas.Metadata{})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// viaV1 returns e as a consumer reads a v1 event: written as v1 (no
// channel), upcast to v2.
func viaV1(t *testing.T, e schemas.Envelope) schemas.Envelope {
	t.Helper()
	u := schemas.NewUpcasters()
	v1, err := u.Downcast(e, 1)
	if err != nil || v1.SchemaVersion != 1 {
		t.Fatalf("downcast to v1: version %d, %v", v1.SchemaVersion, err)
	}
	v2, err := u.Upcast(v1)
	if err != nil {
		t.Fatal(err)
	}
	return v2
}

// channelEvents: a web sale (2 lines), a v2 sale without channel, a v1
// credit note (no channel: unknown), a store adjustment, and a payment of
// the web sale.
func channelEvents(t *testing.T) []schemas.Envelope {
	t.Helper()
	at := time.Date(2011, 3, 10, 12, 0, 0, 0, time.UTC)
	web := channelEvent(t, "ch-web", at, &schemas.OrderPlaced{OrderNumber: "900001", Kind: schemas.KindSale, Channel: schemas.ChannelWeb,
		Customer: schemas.Customer{ID: "c1", Country: "United Kingdom"}, Currency: "GBP", Total: money("3.125"),
		Lines: []schemas.Line{
			{LineNo: 1, StockCode: "A1", Description: "A ONE", Quantity: 2, UnitPrice: money("1.5")},
			{LineNo: 2, StockCode: "A2", Description: "A TWO", Quantity: 1, UnitPrice: money("0.125")},
		}})
	paid, err := schemas.NewEnvelope("ch-web", 2, at.Add(time.Minute), &schemas.OrderPaid{Amount: money("3.125")}, schemas.Metadata{})
	if err != nil {
		t.Fatal(err)
	}
	none := channelEvent(t, "ch-none", at, &schemas.OrderPlaced{OrderNumber: "900002", Kind: schemas.KindSale,
		Customer: schemas.Customer{ID: "c2", Country: "France"}, Currency: "GBP", Total: money("10"),
		Lines: []schemas.Line{{LineNo: 1, StockCode: "B1", Description: "B ONE", Quantity: 4, UnitPrice: money("2.5")}}})
	v1 := viaV1(t, channelEvent(t, "ch-v1", at, &schemas.OrderPlaced{OrderNumber: "C900003", Kind: schemas.KindCreditNote,
		Customer: schemas.Customer{Country: "United Kingdom"}, Currency: "GBP", Total: money("-3"),
		Lines: []schemas.Line{{LineNo: 1, StockCode: "C1", Description: "C ONE", Quantity: -1, UnitPrice: money("3")}}}))
	store := channelEvent(t, "ch-store", at, &schemas.OrderPlaced{OrderNumber: "A900004", Kind: schemas.KindAdjustment, Channel: schemas.ChannelStore,
		Customer: schemas.Customer{Country: "United Kingdom"}, Currency: "GBP", Total: money("-7"),
		Lines: []schemas.Line{{LineNo: 1, StockCode: "D1", Description: "D ONE", Quantity: -1, UnitPrice: money("7")}}})
	return []schemas.Envelope{web, none, v1, store, paid}
}

// TestChannelDimension: the channel of order.placed is stored with the
// order and its lines; Summary, Breakdown and TopProducts filter by it and
// Breakdown groups by it, with exact figures; an order without a channel
// (v2 without one, every v1 event) is "unknown"; replaying the same events
// changes nothing; an unknown channel is refused by name.
func TestChannelDimension(t *testing.T) {
	cfg := testConfig(t)
	events := channelEvents(t)
	q, _ := newQueries(t, cfg)
	ctx := context.Background()
	const (
		webText     = "net 3.125 gross 3.125 returns 0.000 adjustments 0.000 orders 1 credit notes 0 customers 1 lines 2"
		unknownText = "net 7.000 gross 10.000 returns -3.000 adjustments 0.000 orders 1 credit notes 1 customers 1 lines 2"
		storeText   = "net -7.000 gross 0.000 returns 0.000 adjustments -7.000 orders 0 credit notes 0 customers 0 lines 1"
		zeroText    = "net 0.000 gross 0.000 returns 0.000 adjustments 0.000 orders 0 credit notes 0 customers 0 lines 0"
	)
	check := func(stage string) {
		t.Helper()
		for ch, want := range map[string]string{"web": webText, "unknown": unknownText, "store": storeText, "phone": zeroText} {
			got, err := q.Summary(ctx, analytics.Filter{Channel: ch})
			if err != nil {
				t.Fatalf("%s: Summary(channel %s): %v", stage, ch, err)
			}
			if g := totalsText(got); g != want {
				t.Errorf("%s: Summary(channel %s) = %s, want %s", stage, ch, g, want)
			}
		}
		got, err := q.Summary(ctx, analytics.Filter{Channel: "web", Country: "France"})
		if err != nil || totalsText(got) != zeroText {
			t.Errorf("%s: Summary(web, France) = %s, %v; want zeros", stage, totalsText(got), err)
		}
		got, err = q.Summary(ctx, analytics.Filter{Channel: "unknown", Country: "France", From: time.Date(2011, 3, 10, 0, 0, 0, 0, time.UTC)})
		if want := "net 10.000 gross 10.000 returns 0.000 adjustments 0.000 orders 1 credit notes 0 customers 1 lines 1"; err != nil || totalsText(got) != want {
			t.Errorf("%s: Summary(unknown, France) = %s, %v; want %s", stage, totalsText(got), err, want)
		}
		groups, err := q.Breakdown(ctx, analytics.Filter{}, analytics.ByChannel)
		if err != nil {
			t.Fatalf("%s: Breakdown(channel): %v", stage, err)
		}
		var b strings.Builder
		for _, g := range groups {
			fmt.Fprintf(&b, "%s: %s\n", g.Key, totalsText(g.Totals))
		}
		if want := "store: " + storeText + "\nunknown: " + unknownText + "\nweb: " + webText + "\n"; b.String() != want {
			t.Errorf("%s: Breakdown(channel) =\n%swant\n%s", stage, b.String(), want)
		}
		groups, err = q.Breakdown(ctx, analytics.Filter{Channel: "web"}, analytics.ByCountry)
		if err != nil || len(groups) != 1 || groups[0].Key != "United Kingdom" || totalsText(groups[0].Totals) != webText {
			t.Errorf("%s: Breakdown(country, web) = %+v, %v; want United Kingdom: %s", stage, groups, err, webText)
		}
		for ch, want := range map[string]string{
			"web":     "A1 A ONE 3 2 1; A2 A TWO 0.125 1 1; ",
			"unknown": "B1 B ONE 10 4 1; C1 C ONE -3 -1 1; ",
			"phone":   "",
		} {
			ps, err := q.TopProducts(ctx, analytics.Filter{Channel: ch}, analytics.RankRevenue, 10)
			if err != nil {
				t.Fatalf("%s: TopProducts(channel %s): %v", stage, ch, err)
			}
			var b strings.Builder
			for _, p := range ps {
				fmt.Fprintf(&b, "%s %s %s %d %d; ", p.StockCode, p.Description, p.NetRevenue, p.Quantity, p.Documents)
			}
			if b.String() != want {
				t.Errorf("%s: TopProducts(channel %s) = %q, want %q", stage, ch, b.String(), want)
			}
		}
	}

	writeAll(t, newSink(t, cfg), events, 2)
	check("after one delivery")
	writeAll(t, newSink(t, cfg), events, 100) // a replay of the same events
	writeAll(t, newSink(t, cfg), events[2:], 1)
	check("after the replays")

	for _, bad := range []string{"email", "Web", "none"} {
		_, err := q.Summary(ctx, analytics.Filter{Channel: bad})
		if err == nil || !strings.Contains(err.Error(), fmt.Sprintf("channel %q", bad)) {
			t.Errorf("Summary(channel %q) error = %v; want one naming the channel", bad, err)
		}
		if _, err := q.TopProducts(ctx, analytics.Filter{Channel: bad}, analytics.RankRevenue, 10); err == nil {
			t.Errorf("TopProducts(channel %q): no error", bad)
		}
	}
}

// TestChannelMigrationOfEarlierGeneration: a generation built before the
// channel existed (no channel columns, views without it, migration 0003
// not recorded) gets the columns and views from Migrate, its old rows read
// "unknown" and new events keep their channel; a Migrate that finds the
// columns already there (another process migrating) succeeds.
func TestChannelMigrationOfEarlierGeneration(t *testing.T) {
	cfg := testConfig(t)
	events := channelEvents(t)
	ctx := context.Background()
	conn, err := analytics.Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	st, err := analytics.NewStore(conn, cfg.Database)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	db := "`" + cfg.Database + "`."
	forget := []string{
		`RENAME TABLE ` + db + `schema_migrations TO ` + db + `schema_migrations_all`,
		`CREATE TABLE ` + db + `schema_migrations AS ` + db + `schema_migrations_all`,
		`INSERT INTO ` + db + `schema_migrations SELECT * FROM ` + db + `schema_migrations_all WHERE NOT (scope = 'g1' AND version = 3)`,
		`DROP TABLE ` + db + `schema_migrations_all`,
	}
	// The earlier build's tables and views: no channel anywhere; one order
	// written then (its channel was not kept).
	old := append([]string{
		`ALTER TABLE ` + db + `orders_g1 DROP COLUMN channel`,
		`ALTER TABLE ` + db + `order_lines_g1 DROP COLUMN channel`,
		`DROP TABLE ` + db + `order_totals`,
		`CREATE VIEW ` + db + `order_totals AS SELECT order_id, order_number, kind, customer_id, country, total, line_count, placed_at, version FROM ` + db + `orders_g1 FINAL`,
		`DROP TABLE ` + db + `order_lines`,
		`CREATE VIEW ` + db + `order_lines AS SELECT order_id, line_no, order_number, kind, customer_id, country, stock_code, description, quantity, unit_price, amount, placed_at, version FROM ` + db + `order_lines_g1 FINAL`,
		`INSERT INTO ` + db + `orders_g1 SELECT 'ch-old', '900009', 'sale', 'c9', 'EIRE', 'GBP', toDecimal64(5, 3), toUInt32(1), toDateTime('2011-03-10 10:00:00', 'UTC'), toUInt64(1)`,
	}, forget...)
	for _, sql := range old {
		if err := conn.Exec(ctx, sql); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}
	st, err = analytics.NewStore(conn, cfg.Database) // the new build
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Migrate(ctx); err != nil {
		t.Fatalf("Migrate of a generation without channel: %v", err)
	}
	// Columns there, record gone: a Migrate racing another one.
	for _, sql := range forget {
		if err := conn.Exec(ctx, sql); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}
	if err := st.Migrate(ctx); err != nil {
		t.Fatalf("Migrate finding the channel columns there: %v", err)
	}
	writeAll(t, newSink(t, cfg), events, 100)
	q := analytics.New(conn, cfg.Database)
	groups, err := q.Breakdown(ctx, analytics.Filter{}, analytics.ByChannel)
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, g := range groups {
		keys = append(keys, fmt.Sprintf("%s %d %s", g.Key, g.Orders, g.NetRevenue.StringFixed(3)))
	}
	if got, want := strings.Join(keys, ", "), "store 0 -7.000, unknown 2 12.000, web 1 3.125"; got != want {
		t.Errorf("Breakdown(channel) after the migration = %s, want %s", got, want)
	}
	var channels string
	if err := conn.QueryRow(ctx, "SELECT toString(groupArray(channel)) FROM (SELECT channel FROM "+db+"order_lines WHERE order_id = 'ch-web')").Scan(&channels); err != nil || channels != "['web','web']" {
		t.Errorf("channels of the web order's lines in view order_lines = %s, %v; want ['web','web']", channels, err)
	}
}

// withChannels returns events with a channel on the order.placed of every
// third document (web, phone, marketplace, store in turn); the others stay
// unknown.
func withChannels(t *testing.T, events []schemas.Envelope) []schemas.Envelope {
	t.Helper()
	channels := []schemas.Channel{schemas.ChannelWeb, schemas.ChannelPhone, schemas.ChannelMarketplace, schemas.ChannelStore}
	out := make([]schemas.Envelope, len(events))
	n := 0
	for i, e := range events {
		out[i] = e
		if e.EventType != schemas.TypeOrderPlaced {
			continue
		}
		if n++; n%3 != 0 {
			continue
		}
		p, err := e.Decode()
		if err != nil {
			t.Fatal(err)
		}
		placed := p.(*schemas.OrderPlaced)
		placed.Channel = channels[(n/3)%len(channels)]
		if out[i].Payload, err = json.Marshal(placed); err != nil {
			t.Fatal(err)
		}
	}
	return out
}
