package main

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/orderstream/orderstream/projections/analytics"
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
