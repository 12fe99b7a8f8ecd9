package load

import (
	"context"
	"fmt"
	"math"
	"net/http"
	"slices"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// Stage is one part of commit → queryable that a daemon measures per event
// in a Prometheus histogram (seconds): Run scrapes it before and after the
// run and reports the run's share of it (Report.Stages).
type Stage struct {
	// Name labels the stage in the report ("relay: commit → Kafka ack").
	Name string
	// URL is the daemon's /metrics endpoint.
	URL string
	// Metric is the histogram's name, such as
	// orderstream_relay_commit_to_ack_seconds (every series of it summed).
	Metric string
}

// Stages returns the stages of the pipeline measured by its own metrics,
// given the /metrics URLs of the relay and of the analytics and search
// daemons ("" leaves a stage out): the relay's commit → Kafka ack
// (orderstream_relay_commit_to_ack_seconds, from PostgreSQL's commit
// timestamp) and each daemon's Kafka → applied
// (orderstream_consumer_record_age_seconds, from the record's produce
// timestamp to its batch written and committed).
func Stages(relay, analytics, search string) []Stage {
	var out []Stage
	if relay != "" {
		out = append(out, Stage{Name: "relay: commit → Kafka ack", URL: relay, Metric: "orderstream_relay_commit_to_ack_seconds"})
	}
	for _, s := range []struct{ name, url string }{{"analytics", analytics}, {"search", search}} {
		if s.url != "" {
			out = append(out, Stage{Name: s.name + ": Kafka → applied", URL: s.url, Metric: "orderstream_consumer_record_age_seconds"})
		}
	}
	return out
}

// buckets is a scraped histogram: cumulative counts per upper bound
// (seconds, ascending, +Inf last).
type buckets struct {
	upper []float64
	count []uint64
}

// scrape reads metric from url, every series summed.
func scrape(ctx context.Context, cl *http.Client, url, metric string) (buckets, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return buckets{}, err
	}
	resp, err := cl.Do(req)
	if err != nil {
		return buckets{}, fmt.Errorf("scrape %s: %w", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return buckets{}, fmt.Errorf("scrape %s: HTTP %d", url, resp.StatusCode)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		return buckets{}, fmt.Errorf("scrape %s: %w", url, err)
	}
	mf, ok := mfs[metric]
	if !ok || mf.GetType() != dto.MetricType_HISTOGRAM {
		return buckets{}, fmt.Errorf("scrape %s: no histogram %s", url, metric)
	}
	var b buckets
	for _, m := range mf.GetMetric() {
		h := m.GetHistogram()
		var upper []float64
		var count []uint64
		for _, bk := range h.GetBucket() {
			upper, count = append(upper, bk.GetUpperBound()), append(count, bk.GetCumulativeCount())
		}
		if len(upper) == 0 || !math.IsInf(upper[len(upper)-1], 1) {
			upper, count = append(upper, math.Inf(1)), append(count, h.GetSampleCount())
		}
		if b.upper == nil {
			b = buckets{upper: upper, count: make([]uint64, len(count))}
		}
		if !slices.Equal(upper, b.upper) {
			return buckets{}, fmt.Errorf("scrape %s: series of %s with different buckets", url, metric)
		}
		for i, c := range count {
			b.count[i] += c
		}
	}
	return b, nil
}

// sub returns b minus an earlier scrape a of the same histogram.
func (b buckets) sub(a buckets) buckets {
	out := buckets{upper: slices.Clone(b.upper), count: slices.Clone(b.count)}
	for i := range out.count {
		if i < len(a.count) {
			out.count[i] -= min(out.count[i], a.count[i])
		}
	}
	return out
}

// latency is b's figures: N, and P50, P99 and Max as the upper bound of
// the bucket holding them (so at most one bucket, a factor of 2, high).
func (b buckets) latency() Latency {
	if len(b.count) == 0 || b.count[len(b.count)-1] == 0 {
		return Latency{}
	}
	n := b.count[len(b.count)-1]
	q := func(p float64) time.Duration {
		rank := uint64(math.Ceil(p * float64(n)))
		for i, c := range b.count {
			if c >= rank {
				if math.IsInf(b.upper[i], 1) {
					return time.Duration(math.MaxInt64)
				}
				return time.Duration(b.upper[i] * float64(time.Second))
			}
		}
		return 0
	}
	return Latency{N: int(n), P50: q(0.5), P99: q(0.99), Max: q(1)}
}
