package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/orderstream/orderstream/consumers"
	"github.com/orderstream/orderstream/projections/analytics"
	"github.com/orderstream/orderstream/schemas"
	"github.com/shopspring/decimal"
)

func TestTotalsJSON(t *testing.T) {
	tot := analytics.Totals{Returns: decimal.RequireFromString("-896812.49"), GrossSales: decimal.RequireFromString("10644560.42"),
		Orders: 22061, CreditNotes: 3836, ReturnRateCount: decimal.RequireFromString("0.173882"), ReturnRateValue: decimal.RequireFromString("0.084251")}
	month := "2011-01"
	tests := []struct {
		name    string
		key     *string
		columns []string
		want    string
	}{
		{"return-rate", nil, []string{"orders", "credit_notes", "return_rate_count", "gross_sales", "returns", "return_rate_value"},
			`{"orders":22061,"credit_notes":3836,"return_rate_count":"0.173882","gross_sales":"10644560.420","returns":"-896812.490","return_rate_value":"0.084251"}`},
		{"revenue zero adjustments", nil, []string{"adjustments"}, `{"adjustments":"0.000"}`},
		{"breakdown keeps the key first", &month, []string{"orders", "net_revenue"}, `{"key":"2011-01","orders":22061,"net_revenue":"0.000"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			if err := writeJSON(&buf, totalsObject(tt.key, tot, tt.columns)); err != nil {
				t.Fatal(err)
			}
			var compact bytes.Buffer
			if err := json.Compact(&compact, buf.Bytes()); err != nil {
				t.Fatalf("invalid JSON %s: %v", buf.String(), err)
			}
			if compact.String() != tt.want {
				t.Fatalf("got %s\nwant %s", compact.String(), tt.want)
			}
		})
	}
}

// TestAnalyticsChannel runs `analytics summary` with --channel and --by
// channel on a read model holding a web sale and a sale that does not say
// its channel; an unknown channel is a usage error naming it.
func TestAnalyticsChannel(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	_, flags := analyticsModel(ctx, t)
	sink, err := analytics.NewSink(analytics.Config{Addr: flags[1], Database: flags[3]})
	if err != nil {
		t.Fatal(err)
	}
	defer sink.Close()
	at := time.Date(2011, 3, 10, 12, 0, 0, 0, time.UTC)
	var recs []consumers.Record
	for i, ch := range []schemas.Channel{schemas.ChannelWeb, ""} {
		gbp := func(s string) schemas.Money { return schemas.NewMoney(decimal.RequireFromString(s), "GBP") }
		e, err := schemas.NewEnvelope(fmt.Sprintf("cli-%d", i), 1, at, &schemas.OrderPlaced{OrderNumber: fmt.Sprint(900001 + i), Kind: schemas.KindSale,
			Channel: ch, Customer: schemas.Customer{ID: "c1", Country: "France"}, Currency: "GBP", Total: gbp(fmt.Sprint(2 + i)),
			Lines: []schemas.Line{{LineNo: 1, StockCode: "A1", Description: "A ONE", Quantity: int64(2 + i), UnitPrice: gbp("1")}}}, schemas.Metadata{})
		if err != nil {
			t.Fatal(err)
		}
		recs = append(recs, consumers.Record{Topic: "t", Offset: int64(i), Event: e})
	}
	if err := sink.Write(ctx, recs); err != nil {
		t.Fatal(err)
	}
	run := func(args ...string) (string, int) {
		t.Helper()
		cmd := newRootCmd()
		var out, errOut bytes.Buffer
		cmd.SetArgs(append(append(args, flags...), "--log-level", "error"))
		cmd.SetOut(&out)
		cmd.SetErr(&errOut)
		err := cmd.ExecuteContext(ctx)
		return out.String() + errOut.String(), exitCode(err)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"analytics", "summary", "--by", "channel", "--format", "csv"}, "channel,net_revenue"},
		{[]string{"analytics", "summary", "--channel", "web", "--country", "France", "--format", "json"}, `"net_revenue": "2.000"`},
		{[]string{"analytics", "summary", "--channel", "unknown", "--format", "json"}, `"net_revenue": "3.000"`},
		{[]string{"analytics", "top-products", "--channel", "web", "--format", "csv"}, "A1,A ONE,2.000"},
	} {
		out, code := run(tc.args...)
		if code != 0 || !strings.Contains(out, tc.want) {
			t.Errorf("%s: exit %d, output\n%s\nwant exit 0 and %q", strings.Join(tc.args, " "), code, out, tc.want)
		}
	}
	out, code := run("analytics", "summary", "--by", "channel", "--format", "json")
	if code != 0 || !strings.Contains(out, `"key": "unknown"`) || !strings.Contains(out, `"key": "web"`) {
		t.Errorf("--by channel: exit %d, output\n%s\nwant keys unknown and web", code, out)
	}
	out, code = run("analytics", "summary", "--channel", "email")
	if code != 2 || !strings.Contains(out, `--channel: channel "email"`) {
		t.Errorf("--channel email: exit %d, output\n%s\nwant exit 2 naming the channel", code, out)
	}
}
