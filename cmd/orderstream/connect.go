package main

import (
	"context"
	"slices"
	"sync"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/orderstream/orderstream/internal/connect"
	"github.com/orderstream/orderstream/internal/rebuild"
	"github.com/orderstream/orderstream/projections/analytics"
	"github.com/orderstream/orderstream/projections/search"
	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kgo"
)

// The one place where commands turn the connection settings (g.conn,
// internal/connect) into clients. A mistake in the settings is a usage
// error (exit 2) naming the setting; no message holds a secret.

// kafkaOpts returns the options that reach Kafka (seed brokers, TLS, SASL);
// every Kafka client of every command starts with them. They are built once
// per process: one OAUTHBEARER token cache, one insecure-skip-verify WARN.
// The slice is clipped, so a caller's append never writes into another's.
func (g *globals) kafkaOpts() ([]kgo.Opt, error) {
	g.kafka.once.Do(func() {
		g.kafka.opts, g.kafka.err = g.conn.Kafka.ClientOpts(g.log)
		if g.kafka.err != nil {
			g.kafka.err = usagef("kafka: %v", g.kafka.err)
		}
	})
	return slices.Clip(g.kafka.opts), g.kafka.err
}

// kafkaConn is what kafkaOpts built.
type kafkaConn struct {
	once sync.Once
	opts []kgo.Opt
	err  error
}

// kafkaClient returns a Kafka client with kafkaOpts and then extra.
func (g *globals) kafkaClient(extra ...kgo.Opt) (*kgo.Client, error) {
	opts, err := g.kafkaOpts()
	if err != nil {
		return nil, err
	}
	cl, err := kgo.NewClient(append(opts, extra...)...)
	if err != nil {
		return nil, usagef("kafka: %v", err)
	}
	return cl, nil
}

// guardConfig is the configuration of the cutover guard and verify over
// the events topic, compared with ws.
func (g *globals) guardConfig(ws rebuild.WriteSide) (rebuild.GuardConfig, error) {
	kopts, err := g.kafkaOpts()
	if err != nil {
		return rebuild.GuardConfig{}, err
	}
	return rebuild.GuardConfig{Brokers: g.conn.Kafka.Brokers, ClientOpts: kopts, Topic: g.topic, WriteSide: ws}, nil
}

// pgURL returns the PostgreSQL connection string (with the password of
// --pg-password-file when given). It holds the password: never print it.
func (g *globals) pgURL() (string, error) {
	s, err := g.conn.Postgres.ConnString()
	if err != nil {
		return "", usagef("%v", err)
	}
	return s, nil
}

// pgPool opens a pool on the write side's database.
func (g *globals) pgPool(ctx context.Context) (*pgxpool.Pool, error) {
	url, err := g.pgURL()
	if err != nil {
		return nil, err
	}
	pool, err := pgxpool.New(ctx, url)
	if err != nil {
		return nil, usagef("--pg-url: %v", err)
	}
	return pool, nil
}

// analyticsConfig is the ClickHouse read model's connection.
func (g *globals) analyticsConfig() (analytics.Config, error) {
	c, err := g.conn.ClickHouse.Conn(g.log, analytics.DefaultDialTimeout)
	if err != nil {
		return analytics.Config{}, usagef("clickhouse: %v", err)
	}
	return analytics.Config{Addr: c.Addr, Database: g.conn.ClickHouse.Database, Cluster: g.chCluster, Username: c.User, Password: c.Password, TLS: c.TLS, Dial: c.Dial}, nil
}

// searchClient is the search engine's client.
func (g *globals) searchClient() (search.Engine, error) {
	c, err := g.conn.Search.Conn(g.log)
	if err != nil {
		return nil, usagef("search: %v", err)
	}
	eng, err := search.NewEngine(search.EngineConfig{Kind: g.searchEngine, URL: c.URL, CloudID: c.CloudID,
		Username: c.User, Password: c.Password, APIKey: c.APIKey, Transport: c.Transport})
	if err != nil {
		return nil, usagef("--search-engine/--search-url: %v", err)
	}
	return eng, nil
}

// explainErrors makes every command's error name the settings to check when
// a service refused orderstream's credentials (connect.Explain).
func explainErrors(c *cobra.Command) {
	for _, sub := range c.Commands() {
		explainErrors(sub)
	}
	if run := c.RunE; run != nil {
		c.RunE = func(cmd *cobra.Command, args []string) error { return connect.Explain(run(cmd, args)) }
	}
}
