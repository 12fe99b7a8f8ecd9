package consumers

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Health is a snapshot of the consumer's state for /healthz and /readyz.
type Health struct {
	// Alive: Run is running and the client is open.
	Alive bool `json:"alive"`
	// Ready: alive, the member joined the group, and the lag of every
	// assigned partition is known and sums to at most Config.ReadyLag. A
	// member with no partitions (more members than partitions) is ready.
	Ready bool `json:"ready"`
	// Joined: the member holds a group generation.
	Joined bool `json:"joined"`
	// Partitions are the assigned partitions with their lag in records
	// (-1: not known yet).
	Partitions map[int32]int64 `json:"partitions"`
	// Lag is the total known lag, in records.
	Lag int64 `json:"lag"`
	// Reason says why the consumer is not ready (empty when ready).
	Reason string `json:"reason,omitempty"`
}

// Health returns the current state. Safe for concurrent use.
func (c *Consumer) Health() Health {
	h := Health{Alive: c.running.Load() && !c.closed.Load(), Partitions: map[int32]int64{}}
	_, gen := c.cl.GroupMetadata()
	h.Joined = gen >= 0
	unknown := 0
	c.stateMu.Lock()
	for p, ps := range c.parts {
		if ps.hwm < 0 || ps.committed < 0 {
			h.Partitions[p] = -1
			unknown++
			continue
		}
		l := max(0, ps.hwm-ps.committed)
		h.Partitions[p] = l
		h.Lag += l
	}
	c.stateMu.Unlock()
	switch {
	case !h.Alive:
		h.Reason = "consumer not running"
	case !h.Joined:
		h.Reason = "not a member of group " + c.cfg.Group + " yet"
	case unknown > 0:
		h.Reason = fmt.Sprintf("lag of %d partition(s) not known yet", unknown)
	case h.Lag > c.cfg.ReadyLag:
		h.Reason = fmt.Sprintf("lag %d records exceeds the ready bound %d", h.Lag, c.cfg.ReadyLag)
	default:
		h.Ready = true
	}
	return h
}

// Handler serves /metrics (from g; the consumer's own registry when g is
// nil), /healthz (200 while alive, else 503) and /readyz (200 when ready,
// else 503), each health answer a JSON Health.
func Handler(c *Consumer, g prometheus.Gatherer) http.Handler {
	if g == nil {
		g = c.Gatherer()
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(g, promhttp.HandlerOpts{}))
	health := func(ok func(Health) bool) http.HandlerFunc {
		return func(w http.ResponseWriter, _ *http.Request) {
			h := c.Health()
			w.Header().Set("Content-Type", "application/json")
			if !ok(h) {
				w.WriteHeader(http.StatusServiceUnavailable)
			}
			_ = json.NewEncoder(w).Encode(h)
		}
	}
	mux.Handle("/healthz", health(func(h Health) bool { return h.Alive }))
	mux.Handle("/readyz", health(func(h Health) bool { return h.Ready }))
	return mux
}

// refreshLagLoop lists the end offsets of the assigned partitions every
// LagInterval (and the group's committed or the log start offsets of
// partitions whose position is not known yet), so that lag is known for
// partitions that have not been fetched from.
func (c *Consumer) refreshLagLoop(ctx context.Context) {
	t := time.NewTicker(c.cfg.LagInterval)
	defer t.Stop()
	first := time.NewTimer(200 * time.Millisecond)
	defer first.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-first.C:
		case <-t.C:
		}
		if err := c.refreshLag(ctx); err != nil && ctx.Err() == nil {
			c.log.Debug("lag refresh failed", "err", err)
		}
	}
}

func (c *Consumer) refreshLag(ctx context.Context) error {
	c.stateMu.Lock()
	var ps []int32
	var needPos bool
	for p, s := range c.parts {
		ps = append(ps, p)
		needPos = needPos || s.committed < 0
	}
	c.stateMu.Unlock()
	if len(ps) == 0 {
		return nil
	}
	sort.Slice(ps, func(i, j int) bool { return ps[i] < ps[j] })
	ctx, cancel := context.WithTimeout(ctx, c.cfg.LagInterval)
	defer cancel()
	ends, err := c.adm.ListEndOffsets(ctx, c.cfg.Topic)
	if err != nil {
		return fmt.Errorf("list end offsets: %w", err)
	}
	pos := map[int32]int64{}
	if needPos {
		committed, err := c.adm.FetchOffsets(ctx, c.cfg.Group)
		if err != nil {
			return fmt.Errorf("fetch committed offsets: %w", err)
		}
		starts, err := c.adm.ListStartOffsets(ctx, c.cfg.Topic)
		if err != nil {
			return fmt.Errorf("list start offsets: %w", err)
		}
		for _, p := range ps {
			if o, ok := committed.Lookup(c.cfg.Topic, p); ok && o.Err == nil && o.At >= 0 {
				pos[p] = o.At
			} else if s, ok := starts.Lookup(c.cfg.Topic, p); ok && s.Err == nil && s.Offset >= 0 {
				pos[p] = s.Offset
			}
		}
	}
	c.stateMu.Lock()
	defer c.stateMu.Unlock()
	for _, p := range ps {
		s, ok := c.parts[p]
		if !ok {
			continue // revoked meanwhile
		}
		if e, ok := ends.Lookup(c.cfg.Topic, p); ok && e.Err == nil {
			s.hwm = max(s.hwm, e.Offset)
		}
		if o, ok := pos[p]; ok && s.committed < 0 {
			s.committed = o
		}
		c.m.setLag(p, s)
	}
	return nil
}
