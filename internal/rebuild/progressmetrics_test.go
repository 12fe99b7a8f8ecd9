package rebuild

import (
	"github.com/orderstream/orderstream/consumers"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// The gauges follow a rebuild per partition (replayed counted from the log
// start, capped at the end) and are dropped when it is done.
func TestProgressMetrics(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	m, err := NewProgressMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	m.Update(Progress{Projection: "search", Generation: 4, Phase: PhaseReplaying, Partitions: []consumers.PartitionLag{
		{Partition: 0, Start: 10, End: 110, Committed: 60},
		{Partition: 1, Start: 0, End: 50, Committed: -1},
		{Partition: 2, Start: 0, End: 5, Committed: 7}, // committed past a listed end
	}})
	want := `
# HELP orderstream_rebuild_end_offset_records The partition's end offset less its log start offset: the records a running shadow rebuild has to replay.
# TYPE orderstream_rebuild_end_offset_records gauge
orderstream_rebuild_end_offset_records{generation="4",partition="0",projection="search"} 100
orderstream_rebuild_end_offset_records{generation="4",partition="1",projection="search"} 50
orderstream_rebuild_end_offset_records{generation="4",partition="2",projection="search"} 5
# HELP orderstream_rebuild_replayed_records Records a running shadow rebuild has replayed (committed) on the partition, from its log start offset.
# TYPE orderstream_rebuild_replayed_records gauge
orderstream_rebuild_replayed_records{generation="4",partition="0",projection="search"} 50
orderstream_rebuild_replayed_records{generation="4",partition="1",projection="search"} 0
orderstream_rebuild_replayed_records{generation="4",partition="2",projection="search"} 5
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want)); err != nil {
		t.Error(err)
	}
	m.Update(Progress{Projection: "search", Generation: 4, Phase: PhaseDone})
	if n, err := testutil.GatherAndCount(reg); err != nil || n != 0 {
		t.Errorf("series after done: %d, %v; want none", n, err)
	}
	if _, err := NewProgressMetrics(reg); err == nil {
		t.Error("registering the gauges twice: no error")
	}
}
