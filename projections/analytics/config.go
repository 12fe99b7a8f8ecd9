package analytics

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"regexp"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

// Defaults of Config.
const (
	DefaultDatabase          = "orderstream"
	DefaultCurrency          = "GBP"
	DefaultGenerationRefresh = 5 * time.Second
	DefaultDialTimeout       = 5 * time.Second
	DefaultReadTimeout       = 60 * time.Second
)

// Config locates the ClickHouse read model.
type Config struct {
	// Addr is the ClickHouse native protocol address, host:port (required);
	// on a cluster, several comma-separated: a connection goes to the first
	// that answers, in order. The HTTP protocol is not supported: ClickHouse
	// 18.16 refuses clickhouse-go's HTTP settings.
	Addr string
	// Cluster is the name of the server's remote_servers entry the read
	// model lives on (replicated tables sharded by order_id behind
	// Distributed tables, DDL ON CLUSTER; see WithCluster). Default "": one
	// server, plain tables.
	Cluster string
	// Database holds every table and view of the read model; created by
	// Migrate when missing. Default "orderstream". Letters, digits and '_'.
	Database string
	// Username and Password authenticate; default user "default", no password.
	Username string
	Password string
	// TLS, when set, makes every connection TLS (the server's secure native
	// port). Dial, when set, replaces the dialer (internal/connect gives one
	// that does the TLS handshake and names the setting to fix when it
	// fails).
	TLS  *tls.Config
	Dial func(ctx context.Context, addr string) (net.Conn, error)
	// Generation is the generation a Sink writes to; 0 (the default) makes
	// the Sink follow the registry: it writes to every generation that is
	// building, serving or retired (kept for rollback), re-read at most every
	// GenerationRefresh.
	Generation uint32
	// GenerationRefresh bounds how stale the Sink's view of the registry may
	// be. Default 5 s.
	GenerationRefresh time.Duration
	// Currency is the only currency the read model accepts; events in
	// another one are rejected (their sums would be meaningless). Default GBP.
	Currency string
	// DialTimeout bounds one connection attempt; default 5 s.
	DialTimeout time.Duration
	// ReadTimeout bounds one server read; default 60 s.
	ReadTimeout time.Duration
}

var identRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,62}$`)

func (c *Config) setDefaults() {
	if c.Database == "" {
		c.Database = DefaultDatabase
	}
	if c.Username == "" {
		c.Username = "default"
	}
	if c.GenerationRefresh == 0 {
		c.GenerationRefresh = DefaultGenerationRefresh
	}
	if c.Currency == "" {
		c.Currency = DefaultCurrency
	}
	if c.DialTimeout == 0 {
		c.DialTimeout = DefaultDialTimeout
	}
	if c.ReadTimeout == 0 {
		c.ReadTimeout = DefaultReadTimeout
	}
}

// Validate returns every problem of c at once (after defaults are applied).
func (c Config) Validate() error {
	c.setDefaults()
	var errs []error
	if c.Addr == "" {
		errs = append(errs, errors.New("clickhouse address is required (host:port of the native protocol)"))
	}
	if c.Cluster != "" && !identRE.MatchString(c.Cluster) {
		errs = append(errs, fmt.Errorf("clickhouse cluster %q: want the name of a remote_servers entry (letters, digits and '_')", c.Cluster))
	}
	for _, a := range strings.Split(c.Addr, ",") {
		if c.Addr != "" && strings.TrimSpace(a) == "" {
			errs = append(errs, fmt.Errorf("clickhouse address %q: empty entry in the comma-separated list", c.Addr))
			break
		}
	}
	if !identRE.MatchString(c.Database) {
		errs = append(errs, fmt.Errorf("clickhouse database %q: want letters, digits and '_' (not starting with a digit)", c.Database))
	}
	if c.GenerationRefresh < 0 {
		errs = append(errs, fmt.Errorf("generation refresh %s: must not be negative", c.GenerationRefresh))
	}
	if len(c.Currency) != 3 {
		errs = append(errs, fmt.Errorf("currency %q: want an ISO 4217 code such as GBP", c.Currency))
	}
	if c.DialTimeout < 0 || c.ReadTimeout < 0 {
		errs = append(errs, errors.New("dial and read timeouts must not be negative"))
	}
	return errors.Join(errs...)
}

// addrs returns the comma-separated entries of Addr, trimmed.
func (c Config) addrs() []string {
	var out []string
	for _, a := range strings.Split(c.Addr, ",") {
		out = append(out, strings.TrimSpace(a))
	}
	return out
}

// Open returns a pooled native-protocol connection to the server of cfg
// (LZ4-compressed). It does not dial: the first query does, and a broken
// connection is replaced by a new one on the next query, so a client
// survives a server restart by itself. The connection's default database is
// "default": every statement of this package names cfg.Database explicitly.
// Close it when done.
func Open(cfg Config) (driver.Conn, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("analytics config: %w", err)
	}
	conn, err := clickhouse.Open(&clickhouse.Options{
		Protocol:    clickhouse.Native,
		Addr:        cfg.addrs(),
		Auth:        clickhouse.Auth{Database: "default", Username: cfg.Username, Password: cfg.Password},
		Compression: &clickhouse.Compression{Method: clickhouse.CompressionLZ4},
		DialTimeout: cfg.DialTimeout,
		ReadTimeout: cfg.ReadTimeout,
		TLS:         cfg.TLS,
		DialContext: cfg.Dial,
	})
	if err != nil {
		return nil, fmt.Errorf("open clickhouse %s: %w", cfg.Addr, err)
	}
	return conn, nil
}
