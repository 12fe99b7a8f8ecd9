package api

import (
	"context"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Pinger is a read model that can tell cheaply whether it answers. An
// Analytics or Search that implements it is pinged by /readyz.
type Pinger interface {
	// Ping returns nil when the read model answers queries; ctx carries a
	// short deadline (readyTimeout).
	Ping(ctx context.Context) error
}

const (
	// readyTimeout bounds each read model's ping of /readyz.
	readyTimeout = 2 * time.Second
	// readyCacheTTL is how long a /readyz answer is reused, so that probes
	// and scrapes from many clients cost the read models one ping each per
	// TTL.
	readyCacheTTL = 2 * time.Second
)

// apiMetrics are the server's Prometheus metrics, in a registry of its own
// (with the Go runtime and process collectors) served at /metrics.
type apiMetrics struct {
	reg      *prometheus.Registry
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

func newAPIMetrics() *apiMetrics {
	m := &apiMetrics{
		reg: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "orderstream_api_requests_total",
			Help: "HTTP requests answered, by route (the route pattern, \"unmatched\" for none) and status code.",
		}, []string{"route", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "orderstream_api_request_duration_seconds",
			Help:    "Time to answer an HTTP request, in seconds, by route.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2.5, 12), // 1 ms .. ~24 s, past the 15 s request timeout
		}, []string{"route"}),
	}
	m.reg.MustRegister(m.requests, m.duration, collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// instrument counts and times every request under its route pattern, as
// mux would route it; requests refused before routing (405, 414, 421)
// count under the route they asked for too.
func (s *Server) instrument(mux *http.ServeMux, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		route := "unmatched"
		if _, p := mux.Handler(r); p != "" {
			route = p
		}
		sw := &statusWriter{ResponseWriter: w}
		defer func() {
			code := sw.status
			if code == 0 {
				code = http.StatusOK
			}
			s.metrics.requests.WithLabelValues(route, strconv.Itoa(code)).Inc()
			s.metrics.duration.WithLabelValues(route).Observe(time.Since(start).Seconds())
		}()
		next.ServeHTTP(sw, r)
	})
}

// readiness answers /readyz from the last ping of every read model that is
// a Pinger, pinging again when the answer is older than readyCacheTTL.
type readiness struct {
	models  map[string]Pinger
	now     func() time.Time
	timeout time.Duration // of each round of pings: readyTimeout

	mu     sync.Mutex
	at     time.Time
	status map[string]string // read model → "ok" or "unavailable"
	ready  bool
}

func newReadiness(cfg Config) *readiness {
	r := &readiness{models: map[string]Pinger{}, now: time.Now, timeout: readyTimeout}
	if p, ok := cfg.Analytics.(Pinger); ok {
		r.models["analytics"] = p
	}
	if p, ok := cfg.Search.(Pinger); ok {
		r.models["search"] = p
	}
	return r
}

// check returns the read models' status and whether all answer, pinging
// them concurrently unless the cached answer is fresh. failed lists the
// errors of this round's pings (nil when cached).
func (rd *readiness) check(ctx context.Context) (status map[string]string, ready bool, failed map[string]error) {
	rd.mu.Lock()
	defer rd.mu.Unlock()
	if !rd.at.IsZero() && rd.now().Sub(rd.at) < readyCacheTTL {
		return rd.status, rd.ready, nil
	}
	ctx, cancel := context.WithTimeout(ctx, rd.timeout)
	defer cancel()
	var mu sync.Mutex
	var wg sync.WaitGroup
	status, ready, failed = map[string]string{}, true, map[string]error{}
	for name, p := range rd.models {
		wg.Go(func() {
			err := p.Ping(ctx)
			mu.Lock()
			defer mu.Unlock()
			status[name] = "ok"
			if err != nil {
				status[name], ready, failed[name] = "unavailable", false, err
			}
		})
	}
	wg.Wait()
	rd.at, rd.status, rd.ready = rd.now(), status, ready
	return status, ready, failed
}

// handleReady answers 200 {"status":"ready","read_models":{…}} when every
// read model answers its ping, else 503 with "not ready" and the failing
// ones marked "unavailable" (the causes are logged, never sent).
func (s *Server) handleReady(w http.ResponseWriter, r *http.Request) {
	status, ready, failed := s.ready.check(r.Context())
	for name, err := range failed {
		s.log.Warn("read model not ready", "read_model", name, "err", err)
	}
	if !ready {
		writeJSONStatus(w, http.StatusServiceUnavailable, map[string]any{"status": "not ready", "read_models": status})
		return
	}
	writeJSON(w, map[string]any{"status": "ready", "read_models": status})
}

func (s *Server) metricsHandler() http.Handler {
	return promhttp.HandlerFor(s.metrics.reg, promhttp.HandlerOpts{})
}
