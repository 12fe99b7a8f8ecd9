package topic

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kadm"
)

// Replayability is whether a topic can still be replayed from offset zero:
// its settings (Info) and the log start offset of every partition.
type Replayability struct {
	Info Info
	// Starts is the log start offset of every partition (partition →
	// offset): 0 while no record was ever deleted from its head.
	Starts map[int32]int64
}

// Replayable reports whether every event ever written is still there and
// will stay: no problem in Problems.
func (r Replayability) Replayable() bool { return len(r.Problems()) == 0 }

// Problems lists why a replay from offset zero would miss events, or will:
// the settings' problems (Info.Problems: finite retention, compaction),
// then StartProblems of the log start offsets, by partition.
func (r Replayability) Problems() []string {
	return append(r.Info.Problems(), StartProblems(r.Starts)...)
}

// StartProblems names every partition whose log start offset is above 0
// ("partition 3: log start offset 10, want 0 (offsets 0..9 were deleted)"),
// in partition order. Such a partition lost its first records (retention,
// or a DeleteRecords request), so a replay from offset zero starts after
// them.
func StartProblems(starts map[int32]int64) []string {
	var p []string
	for _, part := range slices.Sorted(maps.Keys(starts)) {
		if s := starts[part]; s > 0 {
			p = append(p, fmt.Sprintf("partition %d: log start offset %d, want 0 (offsets 0..%d were deleted)", part, s, s-1))
		}
	}
	return p
}

// CheckReplayable describes topic name (Check) and lists the log start
// offset of every partition. It is the one answer to "can this topic be
// replayed from offset zero", used by the relay, the projection daemons,
// `orderstream status` and the cutover guard. It fails with ErrNotFound
// when the topic does not exist, or when a request fails; it does not judge
// (see Replayability.Problems).
func CheckReplayable(ctx context.Context, adm *kadm.Client, name string) (Replayability, error) {
	info, err := Check(ctx, adm, name)
	if err != nil {
		return Replayability{}, err
	}
	so, err := adm.ListStartOffsets(ctx, name)
	if err == nil {
		err = so.Error()
	}
	if err != nil {
		return Replayability{}, fmt.Errorf("list start offsets of %s: %w", name, err)
	}
	r := Replayability{Info: info, Starts: map[int32]int64{}}
	so.Each(func(o kadm.ListedOffset) {
		if o.Topic == name {
			r.Starts[o.Partition] = o.Offset
		}
	})
	return r, nil
}

// DefaultWatchInterval is how often a Watcher checks its topic.
const DefaultWatchInterval = 30 * time.Second

// WatchConfig configures a Watcher.
type WatchConfig struct {
	// Topic to watch. Required.
	Topic string
	// Interval between two checks; 0 means DefaultWatchInterval (30 s).
	Interval time.Duration
	// Component names the metric: orderstream_<Component>_topic_replayable
	// (e.g. "relay", "consumer"). Required.
	Component string
	// Replication also judges, at every check, whether the topic's
	// replication still fits its cluster (Info.ReplicationProblems:
	// replication factor 1 on several brokers, or min.insync.replicas below
	// 2 with three replicas or more), as the relay's start does: an operator
	// may lower min.insync.replicas, or a reassignment drop replicas, while
	// it runs. Its state has its own ERROR/INFO lines and its own gauge,
	// orderstream_<Component>_topic_replicated (1 fits, 0 not); it never
	// moves the replayable gauge. Default false: not judged, gauge not
	// registered (the projection daemons only read the topic).
	Replication bool
	// ReplicationAccepted logs replication problems at WARN instead of
	// ERROR: the operator accepted them (the relay's
	// --allow-under-replicated). The gauge still reports them.
	ReplicationAccepted bool
}

// Validate returns every problem of c at once.
func (c WatchConfig) Validate() error {
	var errs []error
	if c.Topic == "" {
		errs = append(errs, errors.New("watch: topic is empty"))
	}
	if c.Interval < 0 {
		errs = append(errs, fmt.Errorf("watch: interval %s: want > 0 (0 = %s)", c.Interval, DefaultWatchInterval))
	}
	if c.Component == "" {
		errs = append(errs, errors.New("watch: component is empty"))
	}
	return errors.Join(errs...)
}

// Watcher checks a topic's replayability (CheckReplayable) periodically. It
// logs an ERROR line naming every problem when the topic becomes
// unreplayable (and each time the problems change), an INFO line when it
// is replayable again, a WARN line when a check fails (once per distinct
// failure), and sets the gauge orderstream_<component>_topic_replayable
// (1 replayable, 0 not; unchanged while checks fail). Nothing is logged
// while the state stays the same. With WatchConfig.Replication it judges
// the topic's replication the same way, from the same requests
// (orderstream_<component>_topic_replicated).
type Watcher struct {
	cfg        WatchConfig
	log        *slog.Logger
	gauge      prometheus.Gauge
	replicated prometheus.Gauge // nil unless cfg.Replication
	last       string           // problems (or failure) last logged; "" = replayable
	lastRepl   string           // replication problems last logged; "" = fits
}

// NewWatcher returns a Watcher of cfg.Topic. log nil means
// slog.Default(); reg nil registers the gauge nowhere. It fails on an
// invalid cfg or when reg refuses the gauge.
func NewWatcher(cfg WatchConfig, log *slog.Logger, reg prometheus.Registerer) (*Watcher, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Interval == 0 {
		cfg.Interval = DefaultWatchInterval
	}
	if log == nil {
		log = slog.Default()
	}
	w := &Watcher{cfg: cfg, log: log.With("topic", cfg.Topic), gauge: prometheus.NewGauge(prometheus.GaugeOpts{
		Name:        "orderstream_" + cfg.Component + "_topic_replayable",
		Help:        "1 while the topic can be replayed from offset zero (infinite retention, no compaction, every log start offset 0), else 0.",
		ConstLabels: prometheus.Labels{"topic": cfg.Topic},
	})}
	w.gauge.Set(1)
	gauges := []prometheus.Gauge{w.gauge}
	if cfg.Replication {
		w.replicated = prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "orderstream_" + cfg.Component + "_topic_replicated",
			Help: "1 while the topic's replication fits its cluster (not replication factor 1 on several brokers, " +
				"min.insync.replicas >= 2 with three replicas or more), else 0.",
			ConstLabels: prometheus.Labels{"topic": cfg.Topic},
		})
		w.replicated.Set(1)
		gauges = append(gauges, w.replicated)
	}
	if reg != nil {
		for _, g := range gauges {
			if err := reg.Register(g); err != nil {
				return nil, fmt.Errorf("register topic watch metric: %w", err)
			}
		}
	}
	return w, nil
}

// check runs one check, updating the gauge and logging a state change.
func (w *Watcher) check(ctx context.Context, adm *kadm.Client) {
	r, err := CheckReplayable(ctx, adm, w.cfg.Topic)
	if err != nil {
		if msg := "check failed: " + err.Error(); msg != w.last {
			w.last = msg
			w.log.Warn("could not check whether the topic can be replayed from offset zero", "err", err)
		}
		return
	}
	problems := r.Problems()
	state := strings.Join(problems, "; ")
	if state != w.last {
		if len(problems) > 0 {
			w.log.Error("topic can no longer be replayed from offset zero: a rebuild would miss events",
				"problems", state)
		} else if w.last != "" {
			w.log.Info("topic can be replayed from offset zero again")
		}
		w.last = state
	}
	if len(problems) > 0 {
		w.gauge.Set(0)
	} else {
		w.gauge.Set(1)
	}
	if w.cfg.Replication {
		w.checkReplication(r.Info)
	}
}

// JudgeReplication judges the replication of info, which a check outside
// the watcher read (the relay's start, before Run), as a check of the
// watcher would: it logs the state if it differs from the one last logged
// (ERROR, WARN with WatchConfig.ReplicationAccepted, INFO when it fits
// again) and sets orderstream_<component>_topic_replicated. The watcher's
// later checks then log only a change from it, so the start's state is
// logged once. A no-op without WatchConfig.Replication. Not to be called
// while Run runs.
func (w *Watcher) JudgeReplication(info Info) {
	if w.cfg.Replication {
		w.checkReplication(info)
	}
}

// checkReplication judges info's replication, updating the gauge and
// logging a state change.
func (w *Watcher) checkReplication(info Info) {
	problems := info.ReplicationProblems()
	state := strings.Join(problems, "; ")
	if state != w.lastRepl {
		attrs := []any{"replicas", info.Replicas, "min_insync_replicas", info.MinInsync, "brokers", info.Brokers}
		switch {
		case len(problems) > 0 && w.cfg.ReplicationAccepted:
			w.log.Warn("topic is under-replicated for its cluster; losing a broker may lose events (allowed by --allow-under-replicated)",
				append([]any{"problems", state}, attrs...)...)
		case len(problems) > 0:
			w.log.Error("topic is under-replicated for its cluster: losing a broker may lose acknowledged events",
				append([]any{"problems", state}, attrs...)...)
		default:
			w.log.Info("topic replication fits its cluster again", attrs...)
		}
		w.lastRepl = state
	}
	if len(problems) > 0 {
		w.replicated.Set(0)
	} else {
		w.replicated.Set(1)
	}
}

// Run checks through adm at once, then every Interval, until ctx ends; it
// returns ctx's error. A failed check is logged and retried at the next
// tick. Run it once at a time.
func (w *Watcher) Run(ctx context.Context, adm *kadm.Client) error {
	t := time.NewTicker(w.cfg.Interval)
	defer t.Stop()
	for {
		w.check(ctx, adm)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
}
