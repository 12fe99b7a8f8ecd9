package rebuild

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
)

// ProgressMetrics exports the progress of shadow rebuilds as Prometheus
// gauges, per projection, generation and partition:
//   - orderstream_rebuild_replayed_records: records the rebuild's group
//     committed, counted from the partition's log start offset;
//   - orderstream_rebuild_end_offset_records: the partition's end offset
//     less its log start offset, the records there are to replay now.
//
// Their ratio, summed over partitions, is the rebuild's progress (the
// operations dashboard's "Rebuild progress"); a rebuild has caught up when
// they are equal on every partition. A finished rebuild's series are
// dropped at the phase "done". Update is safe for concurrent use (the
// Progress of several rebuilds in one process).
type ProgressMetrics struct {
	replayed, ends *prometheus.GaugeVec
}

// NewProgressMetrics registers the gauges with reg; it fails when reg
// already holds them.
func NewProgressMetrics(reg prometheus.Registerer) (*ProgressMetrics, error) {
	labels := []string{"projection", "generation", "partition"}
	m := &ProgressMetrics{
		replayed: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "orderstream_rebuild_replayed_records",
			Help: "Records a running shadow rebuild has replayed (committed) on the partition, from its log start offset.",
		}, labels),
		ends: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "orderstream_rebuild_end_offset_records",
			Help: "The partition's end offset less its log start offset: the records a running shadow rebuild has to replay.",
		}, labels),
	}
	for _, c := range []prometheus.Collector{m.replayed, m.ends} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// Update sets the gauges from p (a ShadowConfig.Progress callback).
func (m *ProgressMetrics) Update(p Progress) {
	gen := strconv.FormatUint(uint64(p.Generation), 10)
	if p.Phase == PhaseDone {
		m.replayed.DeletePartialMatch(prometheus.Labels{"projection": p.Projection, "generation": gen})
		m.ends.DeletePartialMatch(prometheus.Labels{"projection": p.Projection, "generation": gen})
		return
	}
	for _, pl := range p.Partitions {
		part := strconv.Itoa(int(pl.Partition))
		m.replayed.WithLabelValues(p.Projection, gen, part).Set(float64(min(pl.Position(), pl.End) - pl.Start))
		m.ends.WithLabelValues(p.Projection, gen, part).Set(float64(pl.End - pl.Start))
	}
}
