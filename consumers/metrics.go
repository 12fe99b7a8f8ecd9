package consumers

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the consumer's Prometheus series, all labelled with the
// projection and group (constant labels).
type metrics struct {
	lag            *prometheus.GaugeVec // partition
	processed      prometheus.Counter
	dlq            *prometheus.CounterVec // kind
	batchSize      prometheus.Histogram
	batchSeconds   prometheus.Histogram
	recordAge      prometheus.Histogram
	retries        prometheus.Counter
	commitFailures prometheus.Counter
	lastEvent      prometheus.Gauge
}

func newMetrics(reg prometheus.Registerer, cfg Config, c *Consumer) (*metrics, error) {
	cl := prometheus.Labels{"projection": cfg.Projection, "group": cfg.Group}
	m := &metrics{
		lag: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "orderstream_consumer_lag_records", ConstLabels: cl,
			Help: "Records of the partition not yet committed by the group: high watermark minus committed offset.",
		}, []string{"partition"}),
		processed: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "orderstream_consumer_events_processed_total", ConstLabels: cl,
			Help: "Events written by the sink and committed (redeliveries after a restart or rebalance count again).",
		}),
		dlq: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "orderstream_consumer_dlq_records_total", ConstLabels: cl,
			Help: "Records sent to the dead-letter topic, by kind: decode (not a valid event), rejected (by the sink) or parked (behind an earlier dead letter of its order).",
		}, []string{"kind"}),
		batchSize: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "orderstream_consumer_batch_size_records", ConstLabels: cl,
			Help:    "Records per finished batch.",
			Buckets: prometheus.ExponentialBuckets(1, 4, 9), // 1 … 65536
		}),
		batchSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "orderstream_consumer_batch_duration_seconds", ConstLabels: cl,
			Help:    "Time from decoding a batch to its offsets committed, retries included, in seconds.",
			Buckets: prometheus.ExponentialBuckets(0.001, 4, 10), // 1ms … 262s
		}),
		recordAge: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "orderstream_consumer_record_age_seconds", ConstLabels: cl,
			Help: "Per record: time from its Kafka timestamp (the relay's produce time) to its batch written and committed, in seconds: " +
				"the Kafka, fetch, batch-wait and write part of commit → queryable. Includes the catch-up of a restart or a replay.",
			Buckets: prometheus.ExponentialBuckets(0.005, 2, 15), // 5ms … 82s
		}),
		retries: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "orderstream_consumer_retries_total", ConstLabels: cl,
			Help: "Failed sink writes and DLQ produces that were retried after a backoff.",
		}),
		commitFailures: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "orderstream_consumer_commit_failures_total", ConstLabels: cl,
			Help: "Offset commits that failed (the records were durable; they are consumed again unless a later commit succeeds).",
		}),
		lastEvent: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "orderstream_consumer_last_event_timestamp_seconds", ConstLabels: cl,
			Help: "Kafka timestamp of the last record of the last finished batch, Unix seconds.",
		}),
	}
	up := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "orderstream_consumer_up", ConstLabels: cl,
		Help: "1 while the consumer runs and its client is open.",
	}, func() float64 {
		if c.Health().Alive {
			return 1
		}
		return 0
	})
	ready := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "orderstream_consumer_ready", ConstLabels: cl,
		Help: "1 when the member has its assignment and total lag is at most the ready bound.",
	}, func() float64 {
		if c.Health().Ready {
			return 1
		}
		return 0
	})
	for _, col := range []prometheus.Collector{m.lag, m.processed, m.dlq, m.batchSize, m.batchSeconds, m.recordAge, m.retries, m.commitFailures, m.lastEvent, up, ready} {
		if err := reg.Register(col); err != nil {
			return nil, err
		}
	}
	return m, nil
}

func (m *metrics) setLag(p int32, ps *partState) {
	if ps.hwm < 0 || ps.committed < 0 {
		return
	}
	m.lag.WithLabelValues(strconv.FormatInt(int64(p), 10)).Set(float64(max(0, ps.hwm-ps.committed)))
}

func (m *metrics) dropPartition(p int32) {
	m.lag.DeleteLabelValues(strconv.FormatInt(int64(p), 10))
}
