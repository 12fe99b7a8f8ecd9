package rebuild

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/orderstream/orderstream/projections"
	"github.com/prometheus/client_golang/prometheus"
)

// DefaultVerifySample is how many random orders a periodic check compares
// (PeriodicVerifier) unless configured.
const DefaultVerifySample = 1000

// PeriodicVerifier runs Verify on one read model every interval inside its
// daemon and exports the outcome:
//
//   - orderstream_verify_orders_total{projection}: orders compared, summed
//     over the checks;
//   - orderstream_verify_drift_orders{projection}: orders that drifted in
//     the last check (in-flight orders are not drift);
//   - orderstream_verify_failures_total{projection}: checks that could not
//     be made (a service unreachable, the relay behind).
//
// Drift is logged at WARN naming up to 5 orders; a failed check at WARN.
type PeriodicVerifier struct {
	p        projections.ReadModel
	cfg      VerifyConfig
	interval time.Duration
	log      *slog.Logger
	verified prometheus.Counter
	drift    prometheus.Gauge
	failures prometheus.Counter
}

// NewPeriodicVerifier returns a verifier of p checking every interval (> 0)
// with cfg (cfg.Sample 0: DefaultVerifySample). log nil means
// slog.Default(); reg nil registers the metrics nowhere. It fails on an
// invalid cfg or interval, or when reg refuses a metric.
func NewPeriodicVerifier(p projections.ReadModel, cfg VerifyConfig, interval time.Duration, log *slog.Logger, reg prometheus.Registerer) (*PeriodicVerifier, error) {
	var errs []error
	if err := cfg.Validate(); err != nil {
		errs = append(errs, err)
	}
	if interval <= 0 {
		errs = append(errs, fmt.Errorf("verify interval %s: want > 0", interval))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if cfg.Sample == 0 {
		cfg.Sample = DefaultVerifySample
	}
	if log == nil {
		log = slog.Default()
	}
	labels := prometheus.Labels{"projection": p.Name()}
	v := &PeriodicVerifier{p: p, cfg: cfg, interval: interval, log: log.With("projection", p.Name()),
		verified: prometheus.NewCounter(prometheus.CounterOpts{Name: "orderstream_verify_orders_total",
			Help: "Orders the periodic check compared with the write side.", ConstLabels: labels}),
		drift: prometheus.NewGauge(prometheus.GaugeOpts{Name: "orderstream_verify_drift_orders",
			Help: "Orders that drifted from the write side in the last periodic check (missing, stale or a wrong fact).", ConstLabels: labels}),
		failures: prometheus.NewCounter(prometheus.CounterOpts{Name: "orderstream_verify_failures_total",
			Help: "Periodic checks that could not be made.", ConstLabels: labels}),
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{v.verified, v.drift, v.failures} {
			if err := reg.Register(c); err != nil {
				return nil, fmt.Errorf("register verify metrics: %w", err)
			}
		}
	}
	return v, nil
}

// Check runs one check and updates the metrics.
func (v *PeriodicVerifier) Check(ctx context.Context) (Verification, error) {
	res, err := Verify(ctx, v.p, v.cfg)
	if err != nil {
		if ctx.Err() == nil {
			v.failures.Inc()
		}
		return res, err
	}
	v.verified.Add(float64(res.Summary.Orders))
	v.drift.Set(float64(len(res.Drift)))
	return res, nil
}

// Run checks every interval (the first after one interval) until ctx ends
// and returns ctx's error. Run it once at a time.
func (v *PeriodicVerifier) Run(ctx context.Context) error {
	t := time.NewTicker(v.interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
		res, err := v.Check(ctx)
		switch {
		case ctx.Err() != nil:
			return ctx.Err()
		case err != nil:
			v.log.Warn("periodic read-model check failed", "err", err)
		case !res.OK():
			ids := make([]string, 0, maxExamples)
			for _, d := range res.Drift[:min(len(res.Drift), maxExamples)] {
				ids = append(ids, d.OrderID+" ("+string(d.Drift)+")")
			}
			v.log.Warn("read model drifted from the write side (orderstream verify lists every order)",
				"generation", res.Generation, "drifted", len(res.Drift), "compared", res.Summary.Orders, "orders", ids)
		}
	}
}
