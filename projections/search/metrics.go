package search

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
)

type metrics struct {
	documents, conflicts, stale, rejected, retries prometheus.Counter
	bulkSeconds                                    prometheus.Histogram
}

func newMetrics() *metrics {
	c := func(name, help string) prometheus.Counter {
		return prometheus.NewCounter(prometheus.CounterOpts{Name: name, Help: help})
	}
	return &metrics{
		documents: c("orderstream_search_documents_indexed_total", "Documents the search engine indexed (a new version of an order)."),
		conflicts: c("orderstream_search_version_conflicts_total", "Index operations refused as already applied (external version not newer)."),
		stale:     c("orderstream_search_events_already_applied_total", "Events skipped because the document read already had their version."),
		rejected:  c("orderstream_search_records_rejected_total", "Records rejected permanently (sent to the DLQ by the runtime)."),
		retries:   c("orderstream_search_retries_total", "Engine requests sent again after 429, 5xx or no answer."),
		bulkSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "orderstream_search_bulk_duration_seconds",
			Help:    "Duration of one bulk request, in seconds.",
			Buckets: prometheus.ExponentialBuckets(0.005, 2, 12),
		}),
	}
}

func (m *metrics) register(r prometheus.Registerer) error {
	var errs []error
	for _, c := range []prometheus.Collector{m.documents, m.conflicts, m.stale, m.rejected, m.retries, m.bulkSeconds} {
		errs = append(errs, r.Register(c))
	}
	return errors.Join(errs...)
}
