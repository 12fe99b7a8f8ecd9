package schemas_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/orderstream/orderstream/schemas"
)

// header has the shape of a Kafka client's header type (kgo.RecordHeader).
type header struct {
	Key   string
	Value []byte
}

func TestRecordHeaders(t *testing.T) {
	t.Parallel()
	at := time.Date(2010, 12, 1, 8, 26, 0, 500, time.FixedZone("CET", 3600))
	base := schemas.RecordFields{
		EventID: "0192c0de-0000-7000-8000-000000000001", EventType: "order.paid",
		AggregateID: "order-1", AggregateVersion: 12, OccurredAt: at,
	}
	withTrace := base
	v1 := base
	v1.SchemaVersion = 1
	withTrace.Traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	common := "ce_id=0192c0de-0000-7000-8000-000000000001 ce_type=order.paid ce_source=/orderstream/producer " +
		"ce_specversion=1.0 ce_time=2010-12-01T07:26:00.0000005Z ce_subject=order-1 content-type=application/json "
	tests := []struct {
		name string
		dst  []header
		give schemas.RecordFields
		want string
	}{
		{name: "no traceparent", give: base, want: common + "aggregate_version=12"},
		{name: "traceparent before aggregate_version", give: withTrace,
			want: common + "traceparent=00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01 aggregate_version=12"},
		{name: "schema version", give: v1, want: common + "aggregate_version=12 ce_dataschema=https://orderstream.dev/schemas/v1/order.paid.json schema_version=1"},
		{name: "appends to dst", dst: []header{{Key: "x", Value: []byte("y")}}, give: base, want: "x=y " + common + "aggregate_version=12"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := ""
			for i, h := range schemas.RecordHeaders(tt.dst, tt.give) {
				if i > 0 {
					got += " "
				}
				got += fmt.Sprintf("%s=%s", h.Key, h.Value)
			}
			if got != tt.want {
				t.Errorf("headers\n got %s\nwant %s", got, tt.want)
			}
		})
	}
}
