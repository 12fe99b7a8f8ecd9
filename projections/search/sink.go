package search

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/orderstream/orderstream/consumers"
	"github.com/orderstream/orderstream/internal/tracing"
	"github.com/orderstream/orderstream/projections"
	"github.com/orderstream/orderstream/schemas"
	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/attribute"
)

// Defaults of SinkConfig.
const (
	DefaultMaxBulkBytes   = 5 << 20 // 5 MiB of NDJSON per bulk request
	DefaultMaxInFlight    = 2       // concurrent bulk requests per Write
	DefaultRetryTimeout   = 30 * time.Second
	DefaultRequestTimeout = 2 * time.Minute
)

// SinkConfig configures a Sink.
type SinkConfig struct {
	Config
	// Generation is the generation the sink writes. 0 (the daemon) means
	// every generation in the write alias, resolved at each Write: the
	// serving one, a generation being built and older generations kept for
	// rollback. n > 0 (a rebuild) means <prefix>_v<n> only.
	Generation int
	// MaxBulkBytes bounds the NDJSON body of one bulk request, in bytes
	// (default 5 MiB). A single document larger than that goes alone.
	MaxBulkBytes int
	// MaxInFlight bounds the bulk requests one Write has in flight at once
	// (default 2), so a Write holds at most MaxInFlight × MaxBulkBytes of
	// request bodies on the wire.
	MaxInFlight int
	// RetryTimeout bounds how long one Write retries a bulk request or a
	// read that failed with 429, 5xx or no answer (exponential backoff)
	// before it returns a transient error, which the consumer runtime
	// retries in turn (default 30 s).
	RetryTimeout time.Duration
	// RequestTimeout bounds one request to the engine (default 2 min); a
	// request that times out is retried like a 5xx. It guards against a node
	// that stops answering without closing the connection.
	RequestTimeout time.Duration
}

func (c *SinkConfig) setDefaults() {
	c.Config.setDefaults()
	if c.MaxBulkBytes == 0 {
		c.MaxBulkBytes = DefaultMaxBulkBytes
	}
	if c.MaxInFlight == 0 {
		c.MaxInFlight = DefaultMaxInFlight
	}
	if c.RetryTimeout == 0 {
		c.RetryTimeout = DefaultRetryTimeout
	}
	if c.RequestTimeout == 0 {
		c.RequestTimeout = DefaultRequestTimeout
	}
}

// Validate reports every problem of c at once (after defaults).
func (c SinkConfig) Validate() error {
	var errs []error
	errs = append(errs, c.Config.Validate())
	if c.Generation < 0 {
		errs = append(errs, fmt.Errorf("search sink: generation %d: want 0 (write alias) or ≥ 1", c.Generation))
	}
	if c.MaxBulkBytes < 1024 {
		errs = append(errs, fmt.Errorf("search sink: max bulk bytes %d: want ≥ 1024", c.MaxBulkBytes))
	}
	if c.MaxInFlight < 1 {
		errs = append(errs, fmt.Errorf("search sink: max in flight %d: want ≥ 1", c.MaxInFlight))
	}
	if c.RetryTimeout < 0 {
		errs = append(errs, fmt.Errorf("search sink: retry timeout %s: want ≥ 0", c.RetryTimeout))
	}
	if c.RequestTimeout < 0 {
		errs = append(errs, fmt.Errorf("search sink: request timeout %s: want ≥ 0", c.RequestTimeout))
	}
	return errors.Join(errs...)
}

// Option configures optional collaborators of a Sink.
type Option func(*options)

type options struct {
	log *slog.Logger
	reg prometheus.Registerer
}

// WithLogger sets the logger (default: discard).
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.log = l } }

// WithRegisterer registers the sink's metrics (default: not registered).
func WithRegisterer(r prometheus.Registerer) Option { return func(o *options) { o.reg = r } }

// Stats are the sink's counters since New. Documents counts index
// operations the engine applied; Conflicts those it refused because the
// index already held the same or a newer version (already applied);
// Stale events skipped before any request because the document read already
// had their version; Rejected records reported in a RejectedError; Retries
// bulk or read requests sent again after 429/5xx/no answer.
type Stats struct {
	Documents, Conflicts, Stale, Rejected, Retries int64
}

// Sink is the search projection's consumers.Sink: it folds the events of a
// batch into one full document per order and indexes it with the order's
// aggregate_version as external version (see the package doc). Write is
// called from one goroutine at a time; Stats may be called concurrently.
type Sink struct {
	cfg   SinkConfig
	eng   Engine
	names Names
	log   *slog.Logger
	m     *metrics

	mu    sync.Mutex
	stats Stats
}

var _ consumers.Sink = (*Sink)(nil)

// NewSink returns a Sink. It sends no request: run Admin.Setup (or
// CreateGeneration for a rebuild) first.
func NewSink(cfg SinkConfig, opts ...Option) (*Sink, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	o := options{log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	for _, opt := range opts {
		opt(&o)
	}
	m := newMetrics()
	if o.reg != nil {
		if err := m.register(o.reg); err != nil {
			return nil, fmt.Errorf("search sink metrics: %w", err)
		}
	}
	return &Sink{cfg: cfg, eng: cfg.Engine, names: cfg.Names(), log: o.log, m: m}, nil
}

// Stats returns the counters so far.
func (s *Sink) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stats
}

func (s *Sink) count(f func(*Stats)) {
	s.mu.Lock()
	f(&s.stats)
	s.mu.Unlock()
}

// Close releases nothing (the engine client is shared); it exists for the
// runtime's io.Closer and is idempotent.
func (s *Sink) Close() error { return nil }

// event is one decoded record of a batch.
type event struct {
	idx int // index in the batch
	env schemas.Envelope
	p   schemas.Payload
}

// target is one index the sink writes. Primary targets are authoritative: an
// event that cannot be applied there is rejected; on other targets (a
// generation still being built by its own rebuild) it is skipped.
type target struct {
	index   string
	primary bool
}

// Write implements consumers.Sink. See the package doc for the guarantees.
// It returns a *consumers.RejectedError for records that can never be
// applied (undecodable payload, unknown event type, a value outside the
// event contract's range, no order.placed before them, a document the
// engine refuses with a 4xx), and a transient error
// when the engine stayed unavailable (429, 5xx, no answer) for RetryTimeout.
func (s *Sink) Write(ctx context.Context, batch []consumers.Record) error {
	return s.Prepare(batch).Write(ctx)
}

// Prepare decodes the payloads of batch and groups its events by order in
// version order (the CPU work of Write) without touching the search engine;
// the runtime runs it while the previous batch is written. The result's
// Write has Write's contract.
func (s *Sink) Prepare(batch []consumers.Record) consumers.Prepared {
	p := &preparedEvents{s: s, rejected: map[int]error{}, byOrder: map[string][]event{}}
	for i, r := range batch {
		e := r.Event
		if e.AggregateType != "" && e.AggregateType != schemas.AggregateOrder {
			p.rejected[i] = fmt.Errorf("aggregate type %q: the search projection reads orders only", e.AggregateType)
			continue
		}
		pl, err := e.Decode()
		if err == nil {
			err = checkRange(e, pl)
		}
		if err != nil {
			p.rejected[i] = err
			continue
		}
		if _, ok := p.byOrder[e.AggregateID]; !ok {
			p.ids = append(p.ids, e.AggregateID)
		}
		p.byOrder[e.AggregateID] = append(p.byOrder[e.AggregateID], event{idx: i, env: e, p: pl})
	}
	for _, id := range p.ids {
		evs := p.byOrder[id]
		slices.SortStableFunc(evs, func(a, b event) int { return cmp.Compare(a.env.AggregateVersion, b.env.AggregateVersion) })
		// The same version twice (a redelivery within the batch): keep the first.
		p.byOrder[id] = slices.CompactFunc(evs, func(a, b event) bool { return a.env.AggregateVersion == b.env.AggregateVersion })
	}
	return p
}

// preparedEvents is a batch's events by order, ready to write.
type preparedEvents struct {
	s        *Sink
	ids      []string           // orders in first-seen order
	byOrder  map[string][]event // events of each order, by version, no repeats
	rejected map[int]error      // records that did not decode, by batch index
}

// Rejected returns the records known to be rejected before the write (their
// payload does not decode or holds a value out of range), so that the
// runtime parks the later events of their orders before the write
// (consumers.Screener). The engine may reject more during the write.
func (p *preparedEvents) Rejected() map[int]error { return p.rejected }

func (p *preparedEvents) Write(ctx context.Context) error {
	s := p.s
	rejected := maps.Clone(p.rejected) // an attempt adds the engine's rejections
	if len(p.ids) > 0 {
		targets, err := s.targets(ctx)
		if err != nil {
			return err
		}
		for _, t := range targets {
			gen, _ := s.names.Generation(t.index)
			err := tracing.Run(ctx, "bulk "+t.index, func(ctx context.Context) error { return s.writeTarget(ctx, t, p.ids, p.byOrder, rejected) },
				tracing.KeyProjection.String("search"), tracing.KeyGeneration.Int64(int64(gen)), attribute.Int("orderstream.orders", len(p.ids)))
			if err != nil {
				return err
			}
		}
	}
	if len(rejected) > 0 {
		s.count(func(st *Stats) { st.Rejected += int64(len(rejected)) })
		s.m.rejected.Add(float64(len(rejected)))
		return &consumers.RejectedError{Rejected: rejected}
	}
	return nil
}

// targets resolves the indexes to write.
func (s *Sink) targets(ctx context.Context) ([]target, error) {
	if s.cfg.Generation > 0 {
		return []target{{index: s.names.Index(s.cfg.Generation), primary: true}}, nil
	}
	var resp Response
	err := s.retry(ctx, "resolve "+s.names.WriteAlias(), func(ctx context.Context) error {
		r, err := s.eng.Aliases(ctx, s.names.Pattern())
		if err != nil {
			return err
		}
		resp = r
		if r.OK() || r.Status == http.StatusNotFound {
			return nil
		}
		return errorOf("resolve "+s.names.WriteAlias(), r)
	})
	if err != nil {
		return nil, err
	}
	var body map[string]struct {
		Aliases map[string]struct {
			IsWriteIndex bool `json:"is_write_index"`
		} `json:"aliases"`
	}
	if resp.OK() {
		if err := json.Unmarshal(resp.Body, &body); err != nil {
			return nil, fmt.Errorf("resolve %s: decode: %w", s.names.WriteAlias(), err)
		}
	}
	var ts []target
	for index, v := range body {
		if _, ok := s.names.Generation(index); !ok {
			continue
		}
		w, writing := v.Aliases[s.names.WriteAlias()]
		_, serving := v.Aliases[s.names.ReadAlias()]
		if writing {
			ts = append(ts, target{index: index, primary: w.IsWriteIndex || serving})
		}
	}
	if len(ts) == 0 {
		return nil, fmt.Errorf("write alias %s names no index (run Admin.Setup first): %w", s.names.WriteAlias(), projections.ErrNotSetUp)
	}
	slices.SortFunc(ts, func(a, b target) int { return cmp.Compare(a.index, b.index) })
	return ts, nil
}

// writeTarget folds and indexes the batch's orders into one index.
func (s *Sink) writeTarget(ctx context.Context, t target, ids []string, byOrder map[string][]event, rejected map[int]error) error {
	// Orders whose first event in the batch is not order.placed need the
	// current document (a read before the write; the external version makes
	// a write built on a stale read fail safely).
	var need []string
	for _, id := range ids {
		if evs := byOrder[id]; len(evs) > 0 && evs[0].env.EventType != schemas.TypeOrderPlaced {
			need = append(need, id)
		}
	}
	current, err := s.mget(ctx, t.index, need)
	if err != nil {
		return err
	}
	items := make([]item, 0, len(ids))
	for _, id := range ids {
		base := current[id]
		cur := base
		var applied []int
		for _, ev := range byOrder[id] {
			if _, done := rejected[ev.idx]; done {
				continue
			}
			if cur != nil && ev.env.AggregateVersion <= cur.Version {
				s.count(func(st *Stats) { st.Stale++ })
				s.m.stale.Inc()
				continue
			}
			next, err := apply(cur, ev.env, ev.p)
			if err != nil {
				if errors.Is(err, errNoBase) && !t.primary {
					// A generation being built: its rebuild applies
					// order.placed and this event itself, in order.
					continue
				}
				rejected[ev.idx] = fmt.Errorf("%s v%d of order %s in %s: %w", ev.env.EventType, ev.env.AggregateVersion, id, t.index, err)
				continue
			}
			if cur != nil && ev.env.AggregateVersion != cur.Version+1 {
				s.log.Warn("version gap: applying an event whose predecessor never reached the read model",
					"order_id", id, "index", t.index, "have", cur.Version, "event_version", ev.env.AggregateVersion, "event_id", ev.env.EventID)
			}
			cur = next
			applied = append(applied, ev.idx)
		}
		if cur == nil || cur == base {
			continue
		}
		src, err := json.Marshal(cur)
		if err != nil {
			for _, i := range applied {
				rejected[i] = fmt.Errorf("encode document of order %s: %w", id, err)
			}
			continue
		}
		items = append(items, item{index: t.index, id: id, version: cur.Version, source: src, records: applied})
	}
	return s.bulk(ctx, items, rejected)
}

// mget reads the current documents of ids from index (realtime), keyed by
// id; missing documents are absent from the map.
func (s *Sink) mget(ctx context.Context, index string, ids []string) (map[string]*Order, error) {
	out := make(map[string]*Order, len(ids))
	const chunk = 1000
	for len(ids) > 0 {
		part := ids[:min(chunk, len(ids))]
		ids = ids[len(part):]
		body, _ := json.Marshal(map[string]any{"ids": part})
		var resp Response
		err := s.retry(ctx, "mget "+index, func(ctx context.Context) error {
			r, err := s.eng.MGet(ctx, index, body)
			if err != nil {
				return err
			}
			resp = r
			return check("mget "+index, r)
		})
		if err != nil {
			return nil, err
		}
		var got struct {
			Docs []struct {
				ID      string          `json:"_id"`
				Found   bool            `json:"found"`
				Version int64           `json:"_version"`
				Source  json.RawMessage `json:"_source"`
				Error   json.RawMessage `json:"error"`
			} `json:"docs"`
		}
		if err := json.Unmarshal(resp.Body, &got); err != nil {
			return nil, fmt.Errorf("mget %s: decode: %w", index, err)
		}
		for _, d := range got.Docs {
			if len(d.Error) > 0 {
				return nil, fmt.Errorf("mget %s: document %s: %s", index, d.ID, truncate(string(d.Error), 300))
			}
			if !d.Found {
				continue
			}
			o := &Order{}
			if err := json.Unmarshal(d.Source, o); err != nil {
				return nil, fmt.Errorf("mget %s: document %s: decode: %w", index, d.ID, err)
			}
			// The external version is authoritative; the source copy equals it.
			o.Version = d.Version
			out[d.ID] = o
		}
	}
	return out, nil
}
