package connect

import (
	"strings"
	"testing"
)

// wantErr checks that err holds every part of want (nil want: no error).
func wantErr(t *testing.T, name string, err error, want []string) {
	t.Helper()
	if len(want) == 0 {
		if err != nil {
			t.Errorf("%s: unexpected error: %v", name, err)
		}
		return
	}
	if err == nil {
		t.Errorf("%s: no error, want one naming %q", name, want)
		return
	}
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("%s: error %q does not name %q", name, err, w)
		}
	}
}

func TestKafkaValidate(t *testing.T) {
	t.Parallel()
	pwFile := writeFile(t, "pw", "s3cret\n")
	missing := "/nonexistent/kafka-password"
	ca := newTestCA(t, "ca")
	brokers := []string{"127.0.0.1:9092"}
	tests := []struct {
		name    string
		give    Kafka
		wantErr []string
	}{
		{"plain brokers only", Kafka{Brokers: brokers}, nil},
		{"no brokers", Kafka{}, []string{"--kafka-brokers is empty"}},
		{"broker without port", Kafka{Brokers: []string{"kafka"}}, []string{`--kafka-brokers "kafka": want host:port`}},
		{"broker port out of range", Kafka{Brokers: []string{"kafka:99999"}}, []string{`--kafka-brokers "kafka:99999": want host:port`}},
		{"broker port not a number", Kafka{Brokers: []string{"kafka:"}}, []string{`--kafka-brokers "kafka:": want host:port`}},
		{"unknown mechanism", Kafka{Brokers: brokers, SASLMechanism: "GSSAPI"}, []string{`--kafka-sasl-mechanism "GSSAPI"`, "SCRAM-SHA-512"}},
		{"mechanism case-insensitive", Kafka{Brokers: brokers, SASLMechanism: "scram-sha-512", SASLUser: "u", SASLPasswordFile: pwFile}, nil},
		{"scram without user and password", Kafka{Brokers: brokers, SASLMechanism: SASLScramSHA256}, []string{"needs --kafka-sasl-user", "needs --kafka-sasl-password or --kafka-sasl-password-file"}},
		{"password value and file", Kafka{Brokers: brokers, SASLMechanism: SASLPlain, SASLUser: "u", SASLPassword: NewSecret("x"), SASLPasswordFile: pwFile},
			[]string{"--kafka-sasl-password and --kafka-sasl-password-file are both set"}},
		{"unreadable password file", Kafka{Brokers: brokers, SASLMechanism: SASLPlain, SASLUser: "u", SASLPasswordFile: missing},
			[]string{"--kafka-sasl-password-file " + missing, "no such file"}},
		{"cert without key", Kafka{Brokers: brokers, TLS: TLS{CertFile: ca.file}}, []string{"--kafka-tls-cert-file and --kafka-tls-key-file go together"}},
		{"missing CA file", Kafka{Brokers: brokers, TLS: TLS{CAFile: "/nonexistent/ca.pem"}}, []string{"--kafka-tls-ca-file /nonexistent/ca.pem"}},
		{"CA file without PEM", Kafka{Brokers: brokers, TLS: TLS{CAFile: pwFile}}, []string{"--kafka-tls-ca-file " + pwFile + ": no PEM certificate"}},
		{"oauth without anything", Kafka{Brokers: brokers, SASLMechanism: SASLOAuthBearer},
			[]string{"needs --kafka-oauth-token-url", "needs --kafka-oauth-client-id", "needs --kafka-oauth-client-secret or --kafka-oauth-client-secret-file"}},
		{"oauth token URL not http", Kafka{Brokers: brokers, SASLMechanism: SASLOAuthBearer, OAuthTokenURL: "ftp://x/token", OAuthClientID: "c", OAuthClientSecret: NewSecret("s")},
			[]string{"--kafka-oauth-token-url ftp://x/token: want an http(s) URL"}},
		{"oauth complete", Kafka{Brokers: brokers, SASLMechanism: SASLOAuthBearer, OAuthTokenURL: "https://idp/token", OAuthClientID: "c", OAuthClientSecretFile: pwFile}, nil},
	}
	for _, tt := range tests {
		wantErr(t, tt.name, tt.give.Validate(), tt.wantErr)
	}
}

func TestClickHouseValidate(t *testing.T) {
	t.Parallel()
	pwFile := writeFile(t, "pw", "s3cret")
	tests := []struct {
		name    string
		give    ClickHouse
		wantErr []string
	}{
		{"defaults", ClickHouse{Addr: "127.0.0.1:9000"}, nil},
		{"servers of a cluster", ClickHouse{Addr: "127.0.0.1:9000, 127.0.0.1:9001"}, nil},
		{"no address", ClickHouse{}, []string{"--clickhouse-addr is empty"}},
		{"port out of range", ClickHouse{Addr: "127.0.0.1:9000,127.0.0.1:90000"}, []string{"--clickhouse-addr: want host:port"}},
		{"port zero", ClickHouse{Addr: "h:0"}, []string{"--clickhouse-addr: want host:port"}},
		{"credentials in the address are not echoed", ClickHouse{Addr: "u:s3cret@h:9000"}, []string{"--clickhouse-addr: want host:port"}},
		{"password value and file", ClickHouse{Addr: "h:9000", Password: NewSecret("x"), PasswordFile: pwFile}, []string{"--clickhouse-password and --clickhouse-password-file are both set"}},
		{"unreadable password file", ClickHouse{Addr: "h:9000", PasswordFile: "/nonexistent/ch"}, []string{"--clickhouse-password-file /nonexistent/ch"}},
		{"key without cert", ClickHouse{Addr: "h:9000", TLS: TLS{KeyFile: pwFile}}, []string{"--clickhouse-tls-cert-file and --clickhouse-tls-key-file go together"}},
	}
	for _, tt := range tests {
		err := tt.give.Validate()
		wantErr(t, tt.name, err, tt.wantErr)
		if err != nil && strings.Contains(err.Error(), "s3cret") {
			t.Errorf("%s: error shows the password: %v", tt.name, err)
		}
	}
}

func TestSearchValidate(t *testing.T) {
	t.Parallel()
	keyFile := writeFile(t, "key", "a2V5\n")
	tests := []struct {
		name    string
		give    Search
		wantErr []string
	}{
		{"plain", Search{URL: "http://127.0.0.1:9200"}, nil},
		{"cloud id instead of URL", Search{CloudID: "dep:abc"}, nil},
		{"nodes of a cluster", Search{URL: "http://127.0.0.1:9200, http://127.0.0.1:9201"}, nil},
		{"one bad node of a cluster", Search{URL: "http://127.0.0.1:9200,h:9201"}, []string{"--search-url h:9201: want http"}},
		{"no URL", Search{}, []string{"--search-url is empty"}},
		{"bad scheme with password", Search{URL: "htp://u:s3cret@h:1"}, []string{"--search-url htp://u:xxxxx@h:1: want http"}},
		{"malformed with password", Search{URL: "http://u:s3cret@h:bad"}, []string{"--search-url http://u:xxxxx@h:bad: not a URL"}},
		{"TLS files on http", Search{URL: "http://h:9200", TLS: TLS{CAFile: keyFile}}, []string{"is http:// but --search-tls-* is set"}},
		{"api key and basic auth", Search{URL: "https://h:9200", User: "u", APIKeyFile: keyFile}, []string{"--search-api-key(-file) and --search-user/--search-password(-file) are both set"}},
		{"api key value and file", Search{URL: "https://h:9200", APIKey: NewSecret("k"), APIKeyFile: keyFile}, []string{"--search-api-key and --search-api-key-file are both set"}},
	}
	for _, tt := range tests {
		err := tt.give.Validate()
		wantErr(t, tt.name, err, tt.wantErr)
		if err != nil && strings.Contains(err.Error(), "s3cret") {
			t.Errorf("%s: error shows the password: %v", tt.name, err)
		}
	}
}

func TestSearchConnMovesCredentialsOutOfTheURL(t *testing.T) {
	t.Parallel()
	c, err := Search{URL: "https://elastic:s3cret@127.0.0.1:9200/"}.Conn(nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.URL != "https://127.0.0.1:9200" || c.User != "elastic" || c.Password != "s3cret" {
		t.Errorf("Conn = URL %q user %q password %q, want the credentials out of the URL", c.URL, c.User, c.Password)
	}
	f := writeFile(t, "pw", "from-file\n")
	c, err = Search{URL: "https://127.0.0.1:9200", User: "u", PasswordFile: f}.Conn(nil)
	if err != nil || c.Password != "from-file" {
		t.Errorf("password file: %q, %v; want from-file", c.Password, err)
	}
}

func TestPostgresConnString(t *testing.T) {
	t.Parallel()
	pwFile := writeFile(t, "pgpw", "p'w\\d\n")
	ca := newTestCA(t, "pgca").file
	tests := []struct {
		name    string
		give    Postgres
		want    string
		wantErr []string
	}{
		{"URL as given", Postgres{URL: "postgres://u:pw@h:5432/db?sslmode=verify-full&sslrootcert=" + ca}, "postgres://u:pw@h:5432/db?sslmode=verify-full&sslrootcert=" + ca, nil},
		{"missing root certificate named", Postgres{URL: "postgres://u:s3cret@h/db?sslmode=verify-full&sslrootcert=/nonexistent/ca.pem"}, "", []string{"--pg-url", "/nonexistent/ca.pem"}},
		{"password file into a URL", Postgres{URL: "postgres://u@h:5432/db?sslmode=verify-full", PasswordFile: pwFile}, "postgres://u:p%27w%5Cd@h:5432/db?sslmode=verify-full", nil},
		{"password file into key=value", Postgres{URL: "host=h user=u dbname=db", PasswordFile: pwFile}, `host=h user=u dbname=db password='p\'w\\d'`, nil},
		{"empty", Postgres{}, "", []string{"--pg-url is empty"}},
		{"unreadable password file", Postgres{URL: "postgres://u@h/db", PasswordFile: "/nonexistent/pgpw"}, "", []string{"--pg-password-file /nonexistent/pgpw"}},
		{"empty password file", Postgres{URL: "postgres://u@h/db", PasswordFile: writeFile(t, "empty", "\n")}, "", []string{"the file is empty"}},
		{"malformed URL with a password", Postgres{URL: "postgres://u:s3cret@h:bad/db"}, "", []string{"--pg-url", "invalid port"}},
		{"bad escape with a password", Postgres{URL: "postgres://u:s3cret@h/db%zz"}, "", []string{"--pg-url"}},
		{"bad sslmode", Postgres{URL: "postgres://u:s3cret@h/db?sslmode=bogus"}, "", []string{"--pg-url", "sslmode"}},
		{"password in the URL and a password file", Postgres{URL: "postgres://u:s3cret@h/db", PasswordFile: pwFile}, "", []string{"--pg-url", "--pg-password-file is set"}},
		{"password query parameter and a password file", Postgres{URL: "postgres://u@h/db?password=s3cret", PasswordFile: pwFile}, "", []string{"--pg-password-file is set"}},
		{"password keyword and a password file", Postgres{URL: "host=h user=u password=s3cret dbname=db", PasswordFile: pwFile}, "", []string{"--pg-password-file is set"}},
		{"sslpassword keyword and a password file", Postgres{URL: "host=h user=u sslpassword=k dbname=db", PasswordFile: pwFile}, `host=h user=u sslpassword=k dbname=db password='p\'w\\d'`, nil},
		{"malformed URL with a password and a password file", Postgres{URL: "postgres://u:s3cret@h/db%zz", PasswordFile: pwFile}, "", []string{"--pg-url", "not a valid URL"}},
	}
	for _, tt := range tests {
		got, err := tt.give.ConnString()
		wantErr(t, tt.name, err, tt.wantErr)
		if got != tt.want {
			t.Errorf("%s: ConnString = %q, want %q", tt.name, got, tt.want)
		}
		if err != nil && (strings.Contains(err.Error(), "s3cret") || strings.Contains(err.Error(), "p'w")) {
			t.Errorf("%s: error shows the password: %v", tt.name, err)
		}
	}
}
