package status

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/orderstream/orderstream/consumers"
	"github.com/orderstream/orderstream/producer/relay"
	"github.com/orderstream/orderstream/producer/topic"
	"github.com/orderstream/orderstream/projections"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// DefaultTimeout bounds each service's checks of one look (Config.Timeout).
const DefaultTimeout = 10 * time.Second

// ReadModel is what status reads of a projection's read model.
type ReadModel interface {
	// Generations lists the live generations, ascending.
	Generations(ctx context.Context) ([]projections.Generation, error)
}

// Projection is one projection to inspect.
type Projection struct {
	Name      string    // e.g. "analytics"; required, unique
	Group     string    // its daemon's consumer group; required
	ReadModel ReadModel // required
}

// Config says what an Inspector looks at.
type Config struct {
	Topic   string   // the events topic; required
	Brokers []string // seed brokers, for the short-lived readers of event times and the DLQ; required
	// ClientOpts are added to those readers: how to reach Kafka (TLS,
	// SASL: internal/connect.Kafka.ClientOpts).
	ClientOpts []kgo.Opt
	// Slot is the relay's replication slot (or poll cursor name), read when
	// the relay is checked (a PostgreSQL pool given to New).
	Slot string
	// Timeout bounds each service's checks of one look; default
	// DefaultTimeout (10 s).
	Timeout time.Duration
	// Projections to inspect, reported by name.
	Projections []Projection
	Limits      Limits
}

func (c *Config) setDefaults() {
	if c.Timeout == 0 {
		c.Timeout = DefaultTimeout
	}
}

// Validate reports every missing or invalid setting at once.
func (c Config) Validate() error {
	var errs []error
	if c.Topic == "" {
		errs = append(errs, errors.New("topic: required"))
	}
	if len(c.Brokers) == 0 {
		errs = append(errs, errors.New("brokers: required"))
	}
	if c.Timeout < 0 {
		errs = append(errs, fmt.Errorf("timeout %s: want positive", c.Timeout))
	}
	seen := map[string]bool{}
	for i, p := range c.Projections {
		if p.Name == "" || p.Group == "" || p.ReadModel == nil {
			errs = append(errs, fmt.Errorf("projection %d (%q): name, group and read model are required", i, p.Name))
		}
		if seen[p.Name] {
			errs = append(errs, fmt.Errorf("projection %q: listed twice", p.Name))
		}
		seen[p.Name] = true
	}
	return errors.Join(errs...)
}

// Inspector looks at the relay, the topic, the DLQ and the projections and
// judges them (Evaluate). It only reads. Safe for one goroutine at a time.
type Inspector struct {
	cfg  Config
	adm  *kadm.Client
	pool *pgxpool.Pool
}

// New returns an Inspector reading Kafka through adm and, when pool is
// not nil, the relay's state from PostgreSQL (relay.Inspect). It fails
// with every invalid setting of cfg (Config.Validate).
func New(cfg Config, adm *kadm.Client, pool *pgxpool.Pool) (*Inspector, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("status config: %w", err)
	}
	if adm == nil {
		return nil, errors.New("status config: a Kafka admin client is required")
	}
	cfg.Projections = slices.SortedFunc(slices.Values(cfg.Projections), func(a, b Projection) int { return cmp.Compare(a.Name, b.Name) })
	return &Inspector{cfg: cfg, adm: adm, pool: pool}, nil
}

// Report looks once and judges what it saw against the Limits (Evaluate);
// with w (a wait for the pipeline to catch up) it also decides CaughtUp
// against w's targets. Every failure is a problem of the report, never an
// error: an unreachable service is what monitoring wants to see.
func (i *Inspector) Report(ctx context.Context, w *Wait) Report {
	return Evaluate(i.Observe(ctx), i.cfg.Limits, w)
}

// Observe reads, each read bounded by Config.Timeout: the relay's state
// (when checked), the topic's offsets, then — if those were read — its
// replayability and the DLQ's counts, and per projection its generations,
// then — if the offsets were read — its group, then — if that was read —
// the group's event times.
func (i *Inspector) Observe(ctx context.Context) Observation {
	o := Observation{Time: time.Now().UTC(), Topic: i.cfg.Topic}
	bounded := func() (context.Context, context.CancelFunc) { return context.WithTimeout(ctx, i.cfg.Timeout) }

	if i.pool != nil {
		c, cancel := bounded()
		in, err := relay.Inspect(c, i.pool, i.cfg.Slot)
		cancel()
		if err != nil {
			o.RelayErr = err
		} else {
			o.Relay = &in
		}
	}

	c, cancel := bounded()
	o.Starts, o.Ends, o.OffsetsErr = consumers.TopicOffsets(c, i.adm, i.cfg.Topic)
	cancel()
	if o.OffsetsErr != nil {
		o.Starts, o.Ends = nil, nil
	} else {
		c, cancel := bounded()
		rp, err := topic.CheckReplayable(c, i.adm, i.cfg.Topic)
		cancel()
		if err != nil {
			o.ReplayErr = err
		} else {
			o.Replay = &rp
		}
		c, cancel = bounded()
		o.DLQ, o.DLQErr = CountDLQ(c, i.adm, i.cfg.Brokers, consumers.DLQTopicFor(i.cfg.Topic), i.cfg.ClientOpts...)
		cancel()
	}

	for _, p := range i.cfg.Projections {
		po := ProjectionObservation{Name: p.Name, Group: p.Group}
		c, cancel := bounded()
		po.Generations, po.GenerationsErr = p.ReadModel.Generations(c)
		cancel()
		if o.OffsetsErr == nil {
			po.GroupRead = true
			c, cancel := bounded()
			po.GroupState, po.GroupErr = consumers.InspectGroup(c, i.adm, i.cfg.Topic, p.Group)
			cancel()
			if po.GroupErr == nil {
				po.TimesRead = true
				c, cancel := bounded()
				po.Times, po.TimesErr = ReadEventTimes(c, i.cfg.Brokers, i.cfg.Topic, po.GroupState, i.cfg.ClientOpts...)
				cancel()
			}
		}
		o.Projections = append(o.Projections, po)
	}
	return o
}
