package connect

import "github.com/spf13/pflag"

// Settings are the connection settings of every service, as the flags
// (and so ORDERSTREAM_* variables and YAML keys) of AddFlags fill them.
type Settings struct {
	Kafka      Kafka
	ClickHouse ClickHouse
	Search     Search
	Postgres   Postgres
}

// Default addresses: the local services of deploy/local (plain profile).
const (
	DefaultPostgresURL    = "postgres://orderstream:orderstream@127.0.0.1:55432/orderstream?sslmode=disable"
	DefaultKafkaBroker    = "127.0.0.1:59092"
	DefaultClickHouseAddr = "127.0.0.1:59000"
	DefaultClickHouseDB   = "orderstream"
	DefaultClickHouseUser = "default"
	DefaultSearchURL      = "http://127.0.0.1:59200"
)

// AddFlags registers every connection setting on fs with its default.
func (s *Settings) AddFlags(fs *pflag.FlagSet) {
	fs.Var(newURLValue(&s.Postgres.URL, DefaultPostgresURL), "pg-url", "PostgreSQL connection string as libpq reads it (URL or key=value; sslmode=verify-full, sslrootcert, sslcert, sslkey, passfile); needs wal_level=logical for the relay. Printed with its password redacted")
	fs.StringVar(&s.Postgres.PasswordFile, "pg-password-file", "", "file holding the PostgreSQL password (trailing newline trimmed), instead of one in --pg-url")

	k := &s.Kafka
	fs.StringSliceVar(&k.Brokers, "kafka-brokers", []string{DefaultKafkaBroker}, "Kafka seed brokers, comma-separated host:port")
	addTLSFlags(fs, &k.TLS, "kafka", "Kafka", true)
	fs.StringVar(&k.SASLMechanism, "kafka-sasl-mechanism", SASLNone, "Kafka SASL mechanism: none, PLAIN, SCRAM-SHA-256, SCRAM-SHA-512 or OAUTHBEARER")
	fs.StringVar(&k.SASLUser, "kafka-sasl-user", "", "Kafka SASL user (PLAIN, SCRAM)")
	fs.Var(&k.SASLPassword, "kafka-sasl-password", "Kafka SASL password (PLAIN, SCRAM); prefer --kafka-sasl-password-file")
	fs.StringVar(&k.SASLPasswordFile, "kafka-sasl-password-file", "", "file holding the Kafka SASL password (trailing newline trimmed)")
	fs.StringVar(&k.OAuthTokenURL, "kafka-oauth-token-url", "", "OAUTHBEARER: OAuth 2.0 token endpoint of the client-credentials grant (token cached, fetched again before it expires)")
	fs.StringVar(&k.OAuthClientID, "kafka-oauth-client-id", "", "OAUTHBEARER: OAuth client id")
	fs.Var(&k.OAuthClientSecret, "kafka-oauth-client-secret", "OAUTHBEARER: OAuth client secret; prefer --kafka-oauth-client-secret-file")
	fs.StringVar(&k.OAuthClientSecretFile, "kafka-oauth-client-secret-file", "", "file holding the OAuth client secret (trailing newline trimmed)")
	fs.StringSliceVar(&k.OAuthScopes, "kafka-oauth-scopes", nil, "OAUTHBEARER: scopes to request, comma-separated")

	c := &s.ClickHouse
	fs.StringVar(&c.Addr, "clickhouse-addr", DefaultClickHouseAddr, "ClickHouse native protocol address host:port (its secure port with --clickhouse-tls); comma-separated: the servers of a cluster, tried in order")
	fs.StringVar(&c.Database, "clickhouse-database", DefaultClickHouseDB, "ClickHouse database of the analytics read model")
	fs.StringVar(&c.User, "clickhouse-user", DefaultClickHouseUser, "ClickHouse user")
	fs.Var(&c.Password, "clickhouse-password", "ClickHouse password; prefer --clickhouse-password-file")
	fs.StringVar(&c.PasswordFile, "clickhouse-password-file", "", "file holding the ClickHouse password (trailing newline trimmed)")
	addTLSFlags(fs, &c.TLS, "clickhouse", "ClickHouse", false)

	se := &s.Search
	fs.Var(newURLValue(&se.URL, DefaultSearchURL), "search-url", "search engine base URL, http:// or https:// (credentials in it are accepted but never printed); comma-separated: the nodes of a cluster")
	fs.StringVar(&se.User, "search-user", "", "search engine user (HTTP basic auth)")
	fs.Var(&se.Password, "search-password", "search engine password (HTTP basic auth); prefer --search-password-file")
	fs.StringVar(&se.PasswordFile, "search-password-file", "", "file holding the search engine password (trailing newline trimmed)")
	fs.Var(&se.APIKey, "search-api-key", "search engine API key, sent as 'Authorization: ApiKey <key>'; prefer --search-api-key-file")
	fs.StringVar(&se.APIKeyFile, "search-api-key-file", "", "file holding the search engine API key (trailing newline trimmed)")
	fs.StringVar(&se.CloudID, "search-cloud-id", "", "Elastic Cloud deployment id, instead of --search-url (--search-engine elasticsearch only)")
	fs.StringVar(&se.TLS.CAFile, "search-tls-ca-file", "", "PEM CA bundle trusted for the search engine's certificate (https; default: system roots)")
	fs.StringVar(&se.TLS.CertFile, "search-tls-cert-file", "", "PEM client certificate for the search engine (mutual TLS), with --search-tls-key-file")
	fs.StringVar(&se.TLS.KeyFile, "search-tls-key-file", "", "PEM key of --search-tls-cert-file")
}

// addTLSFlags registers --<prefix>-tls and its files; insecure adds
// --<prefix>-tls-insecure-skip-verify.
func addTLSFlags(fs *pflag.FlagSet, t *TLS, prefix, name string, insecure bool) {
	fs.BoolVar(&t.Enabled, prefix+"-tls", false, "connect to "+name+" over TLS (implied by any --"+prefix+"-tls-* setting)")
	fs.StringVar(&t.CAFile, prefix+"-tls-ca-file", "", "PEM CA bundle trusted for "+name+"'s certificate (default: system roots)")
	fs.StringVar(&t.CertFile, prefix+"-tls-cert-file", "", "PEM client certificate for "+name+" (mutual TLS), with --"+prefix+"-tls-key-file")
	fs.StringVar(&t.KeyFile, prefix+"-tls-key-file", "", "PEM key of --"+prefix+"-tls-cert-file")
	fs.StringVar(&t.ServerName, prefix+"-tls-server-name", "", "name verified in "+name+"'s certificate and sent as SNI (default: the host dialled)")
	if insecure {
		fs.BoolVar(&t.InsecureSkipVerify, prefix+"-tls-insecure-skip-verify", false, "accept any "+name+" server certificate (testing only; logged at WARN)")
	}
}

// urlValue is a string flag holding a URL that may carry a password: it
// prints through RedactURL (help, `docs config`).
type urlValue struct{ p *string }

func newURLValue(p *string, def string) *urlValue {
	*p = def
	return &urlValue{p: p}
}

func (u *urlValue) String() string {
	if u == nil || u.p == nil {
		return ""
	}
	return RedactURL(*u.p)
}
func (u *urlValue) Set(v string) error { *u.p = v; return nil }
func (u *urlValue) Type() string       { return "string" }
