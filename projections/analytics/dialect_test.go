package analytics

import (
	"testing"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/ClickHouse/clickhouse-go/v2/lib/proto"
)

func TestDialectFor(t *testing.T) {
	for _, tc := range []struct {
		give string
		want CutoverScope
	}{
		{"18.16.1", CutoverAllViews},
		{"20.9.7", CutoverAllViews},
		{"20.10.1", CutoverEachView},
		{"25.8.12", CutoverEachView},
		{"26.9.2", CutoverEachView},
	} {
		t.Run(tc.give, func(t *testing.T) {
			d := dialectFor(driver.ServerVersion{Version: proto.ParseVersion(tc.give)})
			if d.cutover != tc.want || d.version != tc.give {
				t.Errorf("dialectFor(%s) = %+v, want cutover %q", tc.give, d, tc.want)
			}
		})
	}
}
