package relay

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	dto "github.com/prometheus/client_model/go"
)

// metrics are the relay's Prometheus metrics, on a registry of its own.
type metrics struct {
	reg            *prometheus.Registry
	published      prometheus.Counter
	duplicates     prometheus.Counter
	inFlight       prometheus.Gauge
	inFlightBytes  prometheus.Gauge
	lagBytes       prometheus.Gauge
	lagSeconds     prometheus.Gauge
	confirmedLSN   prometheus.Gauge
	active         prometheus.Gauge
	purged         prometheus.Counter
	reconnects     prometheus.Counter
	blockerSeconds prometheus.Gauge
	connected      prometheus.Gauge
	parked         prometheus.Counter
	commitToAck    prometheus.Histogram
}

func newMetrics() *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		published: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "orderstream_relay_events_published_total",
			Help: "Outbox events produced to Kafka and acked by every in-sync replica.",
		}),
		duplicates: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "orderstream_relay_duplicates_skipped_total",
			Help: "Events not produced because their partition already held their relay position (republished after a crash).",
		}),
		inFlight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "orderstream_relay_in_flight_events",
			Help: "Events handed to the Kafka producer and not yet acked (bounded by --max-in-flight).",
		}),
		inFlightBytes: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "orderstream_relay_in_flight_bytes",
			Help: "Bytes (key, value, headers) of the events handed to the Kafka producer and not yet acked (bounded by --max-in-flight-bytes).",
		}),
		lagBytes: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "orderstream_relay_lag_bytes",
			Help: "WAL between the server's current position and the slot's confirmed position, in bytes (WAL mode).",
		}),
		lagSeconds: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "orderstream_relay_lag_seconds",
			Help: "WAL mode: now minus the commit time of the oldest unconfirmed transaction (or of the last confirmed one when none is open); poll mode: age of the first committed outbox row not yet relayed (0 when none), rows waiting behind an open transaction included; in seconds.",
		}),
		confirmedLSN: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "orderstream_relay_confirmed_lsn",
			Help: "Last WAL position confirmed to PostgreSQL, as a number (WAL mode); the poll cursor's tx_id in poll mode.",
		}),
		active: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "orderstream_relay_active",
			Help: "1 while this instance holds the relay lock and relays, 0 while standby or stopped.",
		}),
		parked: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "orderstream_relay_events_parked_total",
			Help: "Outbox events written to relay_parked_events instead of Kafka: larger than the topic accepts (--park-oversized), or behind such an event of their order.",
		}),
		purged: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "orderstream_relay_outbox_purged_rows_total",
			Help: "Outbox rows deleted by the purge (relayed and older than --outbox-retention).",
		}),
		reconnects: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "orderstream_relay_reconnects_total",
			Help: "Times the relay lost, or could not make, its connection to PostgreSQL and scheduled a reconnection (with backoff).",
		}),
		blockerSeconds: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "orderstream_relay_watermark_blocker_seconds",
			Help: "Poll mode: while committed outbox rows wait behind the visibility watermark, the age of the open transaction holding it (any database of the server), in seconds; 0 otherwise.",
		}),
		commitToAck: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "orderstream_relay_commit_to_ack_seconds",
			Help: "WAL mode, per event: time from its transaction's commit (PostgreSQL's commit timestamp) to Kafka's ack of its record, in seconds: " +
				"the relay's part of commit → queryable (decoding, producer linger, produce and replication). Includes the catch-up after a restart.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 17), // 1ms … 65s
		}),
		connected: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "orderstream_relay_postgres_connected",
			Help: "1 while the relay's session with PostgreSQL works (active or standby), 0 while it reconnects or is stopped.",
		}),
	}
	m.reg.MustRegister(m.published, m.duplicates, m.inFlight, m.inFlightBytes, m.lagBytes, m.lagSeconds, m.confirmedLSN, m.active, m.purged, m.parked,
		m.reconnects, m.connected, m.blockerSeconds, m.commitToAck,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// counterValue reads a counter's current value.
func counterValue(c prometheus.Counter) float64 {
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		return 0
	}
	return m.GetCounter().GetValue()
}
