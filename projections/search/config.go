package search

import (
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// DefaultPrefix is the name prefix of the production read model: indexes
// orders_v1, orders_v2 …, read alias orders, write alias orders_write,
// template orders.
const DefaultPrefix = "orders"

// Names derives every engine-side name of one read model from its prefix.
// Tests use a prefix of their own so that they can run concurrently.
type Names struct {
	Prefix string
}

// Index returns the index of generation g (≥ 1): <prefix>_v<g>.
func (n Names) Index(g int) string { return n.Prefix + "_v" + strconv.Itoa(g) }

// ReadAlias is the alias every query reads: <prefix>. It points to exactly
// one generation, the serving one.
func (n Names) ReadAlias() string { return n.Prefix }

// WriteAlias is the alias naming every generation the daemon writes:
// <prefix>_write. Its write index (is_write_index) is the serving generation;
// the others are a generation being built and older generations kept current
// for rollback.
func (n Names) WriteAlias() string { return n.Prefix + "_write" }

// RetiredAlias marks the generations a cutover or a rollback took out of
// service: <prefix>_retired. Nothing reads through it; it tells a retired
// generation newer than the serving one (after a rollback) from one being
// built.
func (n Names) RetiredAlias() string { return n.Prefix + "_retired" }

// Template is the name of the index template: <prefix>.
func (n Names) Template() string { return n.Prefix }

// Pattern matches the indexes of every generation: <prefix>_v*.
func (n Names) Pattern() string { return n.Prefix + "_v*" }

// Generation parses an index name of n; ok is false for any other name.
func (n Names) Generation(index string) (g int, ok bool) {
	s, found := strings.CutPrefix(index, n.Prefix+"_v")
	if !found {
		return 0, false
	}
	g, err := strconv.Atoi(s)
	if err != nil || g < 1 || strconv.Itoa(g) != s {
		return 0, false
	}
	return g, true
}

var prefixRE = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,180}$`)

// Config is what every part of the read model (Admin, Query, Sink) needs.
type Config struct {
	// Engine transports requests to the search engine (NewEngine). Required.
	Engine Engine
	// Prefix names the indexes, aliases and template (see Names). Default
	// DefaultPrefix ("orders"). Lower-case letters, digits, '_' and '-'.
	Prefix string
	// Shards is number_of_shards of every new generation. Default 1 (the
	// whole data set is ~80 MB of source).
	Shards int
	// Replicas is number_of_replicas of every new generation. Default 0,
	// right for one local node; set 1 or more in production.
	Replicas int
}

func (c *Config) setDefaults() {
	if c.Prefix == "" {
		c.Prefix = DefaultPrefix
	}
	if c.Shards == 0 {
		c.Shards = 1
	}
}

// Validate reports every problem of c at once (after defaults).
func (c Config) Validate() error {
	var errs []error
	if c.Engine == nil {
		errs = append(errs, errors.New("search: Engine is required"))
	}
	if c.Prefix != "" && !prefixRE.MatchString(c.Prefix) {
		errs = append(errs, fmt.Errorf("search: prefix %q: want lower-case letters, digits, '_' or '-', starting with a letter or digit", c.Prefix))
	}
	if c.Shards < 0 {
		errs = append(errs, fmt.Errorf("search: shards %d: want ≥ 1", c.Shards))
	}
	if c.Replicas < 0 {
		errs = append(errs, fmt.Errorf("search: replicas %d: want ≥ 0", c.Replicas))
	}
	return errors.Join(errs...)
}

// Names returns the names of c's read model.
func (c Config) Names() Names {
	if c.Prefix == "" {
		return Names{Prefix: DefaultPrefix}
	}
	return Names{Prefix: c.Prefix}
}
