package consumers

import (
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/orderstream/orderstream/schemas"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Defaults of Config, applied by New to zero fields.
const (
	DefaultBatchMaxRecords  = 5000
	DefaultBatchMaxBytes    = 16 << 20 // 16 MiB of record values
	DefaultBatchMaxWait     = 500 * time.Millisecond
	DefaultBatchMinInterval = 100 * time.Millisecond
	DefaultRetryInitial     = 200 * time.Millisecond
	DefaultRetryMax         = 30 * time.Second
	DefaultShutdownTimeout  = 30 * time.Second
	DefaultReadyLag         = 1000
	DefaultMaxPollRecords   = 1000
	DefaultLagInterval      = 5 * time.Second
	DefaultSessionTimeout   = 20 * time.Second
)

// Bounds of Config.InstanceID: Kafka's rule for group.instance.id
// (JoinGroupRequest.validateGroupInstanceId, the same as for topic names):
// 1–249 characters of [a-zA-Z0-9._-], neither "." nor "..".
const maxInstanceIDLen = 249

// Config holds the settings of a Consumer. Brokers, Topic and Group are
// required; every other zero field takes the default named on it.
type Config struct {
	// Brokers are the seed brokers, host:port. Required.
	Brokers []string
	// Topic is the topic of order events to consume. Required.
	Topic string
	// Group is the consumer group id; the group's committed offsets are the
	// projection's checkpoint. Required. A new group starts at the earliest
	// offset.
	Group string
	// Projection names the read model for logs and metric labels (e.g.
	// "analytics"). Default: Group.
	Projection string

	// InstanceID makes the member static (group.instance.id, KIP-345): a
	// member restarted with the same id gets its partitions back at once,
	// without a rebalance, instead of waiting out SessionTimeout for the
	// crashed member to expire. The other side of it: a static member does
	// not leave the group when it stops (gracefully or not), so its
	// partitions wait up to SessionTimeout for it before they move. Two
	// live members of one group with the same id fence each other: Run
	// stops with a *FencedError. Kafka's rule applies: 1–249 characters of
	// [a-zA-Z0-9._-] (InstanceIDFor derives one). Default "": a dynamic
	// member (partitions move on every join and leave).
	InstanceID string
	// SessionTimeout is how long the group coordinator waits for a member
	// that stopped heartbeating before it gives its partitions to others
	// (session.timeout.ms; default 20s, the broker accepts 6s–30min by
	// default). It bounds how long the partitions of a member that crashed,
	// or of a static member that stopped, stay idle, and is how long a
	// static member has to come back and regain them without a rebalance.
	// Shorter moves a lost member's partitions sooner but expires members
	// on a network blip or a stalled host. Measured (BenchmarkRestartGap):
	// a dynamic member restarted after a crash wrote its first record
	// 44.7 s later with Kafka's 45s default (KIP-735), 19.9 s with 20s; a
	// static one 0.1 s later with either. 20s halves the idle time of a
	// crash without restart and still lets a live member miss six
	// heartbeats. Heartbeats go every min(3s, SessionTimeout/3), in the
	// background (a long Sink.Write does not delay them).
	SessionTimeout time.Duration

	// BatchMaxRecords bounds the records of one Sink.Write (default 5000).
	BatchMaxRecords int
	// BatchMaxBytes bounds the summed record value sizes of one batch, in
	// bytes (default 16 MiB). A single record larger than the bound still
	// makes a batch of its own.
	BatchMaxBytes int
	// BatchMaxWait bounds how long the first record of a batch waits for
	// more before the batch is written (default 500ms).
	BatchMaxWait time.Duration
	// BatchMinInterval is the caught-up rule's spacing of writes (default
	// 100ms): when a poll returns fewer records than it asked for (the
	// consumer has caught up with the topic), the batch is written as soon
	// as BatchMinInterval has passed since the previous write started,
	// without waiting out BatchMaxWait. Lower is fresher read models at a
	// low rate, higher is fewer, larger writes (ClickHouse parts, bulk
	// requests) when the flow is steady: a daemon writes at most
	// 1/BatchMinInterval batches a second while caught up. A value ≥
	// BatchMaxWait turns the rule off: every batch waits BatchMaxWait or
	// fills. Figures: README, "Latency knobs".
	BatchMinInterval time.Duration
	// MaxPollRecords bounds the records taken from the client per poll
	// (default 1000); a batch gathers several polls.
	MaxPollRecords int

	// RetryInitial and RetryMax bound the exponential backoff (factor 2,
	// jitter ±50%) between attempts of a batch whose Write failed
	// transiently (defaults 200ms and 30s). Retries go on until the sink
	// recovers or ctx is cancelled.
	RetryInitial time.Duration
	RetryMax     time.Duration

	// ShutdownTimeout bounds the graceful shutdown after ctx is cancelled:
	// finishing the in-flight batch, committing, leaving the group
	// (default 30s).
	ShutdownTimeout time.Duration

	// Strict makes a record that cannot be decoded or that the sink
	// rejects stop Run with an error naming its topic, partition and offset
	// (used by replays), instead of sending it to the DLQ.
	Strict bool
	// SkipDeadLettered, in Strict mode, skips (and lists, see
	// Consumer.Skipped) the records that a daemon of the same Projection
	// dead-lettered or parked at the same topic, partition and offset and
	// that were not re-driven since, instead of stopping at them. Default
	// false: such a record stops the run, and the *StrictError names the
	// group that dead-lettered it.
	SkipDeadLettered bool

	// DLQTopic receives records that can never be written (default
	// "<Topic>.dlq"). It is created on start when missing.
	DLQTopic string

	// ReadyLag is the largest total lag, in records, at which the consumer
	// reports ready (default 1000).
	ReadyLag int64
	// LagInterval is how often the end offsets of the assigned partitions
	// are listed to refresh the lag between fetches (default 5s).
	LagInterval time.Duration
}

func (c *Config) setDefaults() {
	if c.Projection == "" {
		c.Projection = c.Group
	}
	if c.BatchMaxRecords == 0 {
		c.BatchMaxRecords = DefaultBatchMaxRecords
	}
	if c.BatchMaxBytes == 0 {
		c.BatchMaxBytes = DefaultBatchMaxBytes
	}
	if c.BatchMaxWait == 0 {
		c.BatchMaxWait = DefaultBatchMaxWait
	}
	if c.BatchMinInterval == 0 {
		c.BatchMinInterval = DefaultBatchMinInterval
	}
	if c.MaxPollRecords == 0 {
		c.MaxPollRecords = DefaultMaxPollRecords
	}
	if c.RetryInitial == 0 {
		c.RetryInitial = DefaultRetryInitial
	}
	if c.RetryMax == 0 {
		c.RetryMax = DefaultRetryMax
	}
	if c.ShutdownTimeout == 0 {
		c.ShutdownTimeout = DefaultShutdownTimeout
	}
	if c.DLQTopic == "" && c.Topic != "" {
		c.DLQTopic = DLQTopicFor(c.Topic)
	}
	if c.ReadyLag == 0 {
		c.ReadyLag = DefaultReadyLag
	}
	if c.LagInterval == 0 {
		c.LagInterval = DefaultLagInterval
	}
	if c.SessionTimeout == 0 {
		c.SessionTimeout = DefaultSessionTimeout
	}
}

// heartbeatInterval is the interval of group heartbeats: a third of the
// session timeout, at most franz-go's default of 3s (Kafka's guidance:
// heartbeat.interval.ms no higher than a third of session.timeout.ms).
func (c Config) heartbeatInterval() time.Duration {
	return min(3*time.Second, c.SessionTimeout/3)
}

// InstanceIDFor returns a static instance id for projection on the host
// named host: "<host>-<projection>", every character Kafka does not allow
// in an instance id replaced by '-', cut to 249 characters. A
// Kubernetes StatefulSet pod's host name (consume-search-0) is stable
// across restarts, so its id is too. Two processes of one projection on
// one host get the same id and fence each other: give each its own.
func InstanceIDFor(host, projection string) string {
	id := []byte(host + "-" + projection)
	for i, b := range id {
		if !instanceIDByte(b) {
			id[i] = '-'
		}
	}
	return string(id[:min(len(id), maxInstanceIDLen)])
}

func instanceIDByte(b byte) bool {
	return b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z' || b >= '0' && b <= '9' || b == '.' || b == '_' || b == '-'
}

// validInstanceID explains why id is not a legal group.instance.id, or
// returns "".
func validInstanceID(id string) string {
	switch {
	case id == "." || id == "..":
		return "cannot be \".\" or \"..\""
	case len(id) > maxInstanceIDLen:
		return fmt.Sprintf("%d characters, at most %d", len(id), maxInstanceIDLen)
	}
	for i := 0; i < len(id); i++ {
		if !instanceIDByte(id[i]) {
			return fmt.Sprintf("character %q at %d: only a-z, A-Z, 0-9, '.', '_' and '-'", id[i], i)
		}
	}
	return ""
}

// DLQTopicFor returns the default dead-letter topic of topic: "<topic>.dlq".
func DLQTopicFor(topic string) string { return topic + ".dlq" }

// Validate reports every problem of c at once (errors.Join); zero fields
// that have a default are not problems.
func (c Config) Validate() error {
	var errs []error
	if len(c.Brokers) == 0 {
		errs = append(errs, errors.New("brokers: at least one seed broker (host:port) is required"))
	}
	for _, b := range c.Brokers {
		if strings.TrimSpace(b) == "" || !strings.Contains(b, ":") {
			errs = append(errs, fmt.Errorf("brokers: %q is not host:port", b))
		}
	}
	if c.Topic == "" {
		errs = append(errs, errors.New("topic: required"))
	}
	if c.Group == "" {
		errs = append(errs, errors.New("group: required"))
	}
	if c.InstanceID != "" {
		if why := validInstanceID(c.InstanceID); why != "" {
			errs = append(errs, fmt.Errorf("instance id %q: %s", c.InstanceID, why))
		}
	}
	if c.DLQTopic != "" && c.DLQTopic == c.Topic {
		errs = append(errs, fmt.Errorf("dlq topic %q: must differ from the consumed topic", c.DLQTopic))
	}
	for _, n := range []struct {
		name string
		v    int64
	}{
		{"batch max records", int64(c.BatchMaxRecords)},
		{"batch max bytes", int64(c.BatchMaxBytes)},
		{"max poll records", int64(c.MaxPollRecords)},
		{"ready lag", c.ReadyLag},
	} {
		if n.v < 0 {
			errs = append(errs, fmt.Errorf("%s: %d is negative", n.name, n.v))
		}
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{
		{"batch max wait", c.BatchMaxWait},
		{"batch min interval", c.BatchMinInterval},
		{"retry initial", c.RetryInitial},
		{"retry max", c.RetryMax},
		{"shutdown timeout", c.ShutdownTimeout},
		{"lag interval", c.LagInterval},
		{"session timeout", c.SessionTimeout},
	} {
		if d.v < 0 {
			errs = append(errs, fmt.Errorf("%s: %s is negative", d.name, d.v))
		}
	}
	if c.SkipDeadLettered && !c.Strict {
		errs = append(errs, errors.New("skip dead lettered: applies to strict mode only (the daemons dead-letter and move on)"))
	}
	if c.SessionTimeout > 0 && c.SessionTimeout < time.Second {
		errs = append(errs, fmt.Errorf("session timeout %s: below 1s (the broker's minimum, group.min.session.timeout.ms, is 6s by default)", c.SessionTimeout))
	}
	if c.RetryInitial > 0 && c.RetryMax > 0 && c.RetryInitial > c.RetryMax {
		errs = append(errs, fmt.Errorf("retry initial %s exceeds retry max %s", c.RetryInitial, c.RetryMax))
	}
	return errors.Join(errs...)
}

// Option sets an optional collaborator of a Consumer.
type Option func(*options)

type options struct {
	log        *slog.Logger
	reg        prometheus.Registerer
	clientOpts []kgo.Opt
	upcasters  *schemas.Upcasters
}

// WithUpcasters sets the chain that turns every event into the version the
// sink reads before the sink sees it (default: schemas.NewUpcasters(), this
// build's chain). Tests play a consumer of an older release with
// schemas.NewUpcasters().ReadingUpTo(1).
func WithUpcasters(u *schemas.Upcasters) Option { return func(o *options) { o.upcasters = u } }

// WithLogger sets the logger (default: slog.Default()).
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.log = l } }

// WithRegisterer registers the consumer's metrics with reg (default: a
// fresh private registry, reachable through Consumer.Gatherer).
func WithRegisterer(reg prometheus.Registerer) Option { return func(o *options) { o.reg = reg } }

// WithClientOpts adds franz-go client options after the runtime's own (they
// win on conflict) to every client of the consumer (group, DLQ reader):
// how to reach Kafka (TLS, SASL: internal/connect.Kafka.ClientOpts), and in
// tests shorter timeouts. Default: none.
func WithClientOpts(opts ...kgo.Opt) Option {
	return func(o *options) { o.clientOpts = append(o.clientOpts, opts...) }
}
