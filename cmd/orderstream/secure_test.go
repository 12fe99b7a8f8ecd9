package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/orderstream/orderstream/consumers"
	"github.com/orderstream/orderstream/internal/connect"
	"github.com/orderstream/orderstream/internal/testenv"
	"github.com/orderstream/orderstream/internal/testfixture"
	"github.com/orderstream/orderstream/producer/csvimport"
	"github.com/orderstream/orderstream/projections/analytics"
	"github.com/orderstream/orderstream/schemas"
	"github.com/shopspring/decimal"
	"github.com/twmb/franz-go/pkg/kadm"
)

// The tests of this file run against the secure profile of the local
// services (deploy/local/services.sh up --secure: TLS on every service,
// SASL_SSL on Kafka, passwords everywhere) with the environment that
// `services.sh env --secure` prints. `make test-secure` runs them.

// envSecureTest gates them: unset, they skip; set to 1, a missing secure
// service or setting fails them.
const envSecureTest = "ORDERSTREAM_TEST_SECURE"

// secureVars are the settings `services.sh env --secure` prints: the
// client side of every hop.
var secureVars = []string{
	"ORDERSTREAM_PG_URL", "ORDERSTREAM_PG_PASSWORD_FILE",
	"ORDERSTREAM_KAFKA_BROKERS", "ORDERSTREAM_KAFKA_TLS_CA_FILE", "ORDERSTREAM_KAFKA_TLS_CERT_FILE", "ORDERSTREAM_KAFKA_TLS_KEY_FILE",
	"ORDERSTREAM_KAFKA_SASL_MECHANISM", "ORDERSTREAM_KAFKA_SASL_USER", "ORDERSTREAM_KAFKA_SASL_PASSWORD_FILE",
	"ORDERSTREAM_CLICKHOUSE_ADDR", "ORDERSTREAM_CLICKHOUSE_TLS_CA_FILE", "ORDERSTREAM_CLICKHOUSE_USER", "ORDERSTREAM_CLICKHOUSE_PASSWORD_FILE",
	"ORDERSTREAM_SEARCH_URL", "ORDERSTREAM_SEARCH_TLS_CA_FILE", "ORDERSTREAM_SEARCH_USER", "ORDERSTREAM_SEARCH_PASSWORD_FILE",
}

// secureProfile is the secure services as the environment describes them.
type secureProfile struct {
	env     map[string]string // every ORDERSTREAM_* variable of the test's environment
	tls     string            // the profile's tls/ directory (ca.pem, client-expired.pem, untrusted-ca.pem …)
	secrets []string          // every password and private key line a client holds
}

// newSecureProfile returns the secure profile, skipping the test unless
// ORDERSTREAM_TEST_SECURE=1 and failing it when a setting is missing or a
// service does not accept TCP connections.
func newSecureProfile(t *testing.T) *secureProfile {
	t.Helper()
	if os.Getenv(envSecureTest) != "1" {
		t.Skipf("secure profile tests: run `make test-secure` (or %s=1 with the environment of `deploy/local/services.sh env --secure`)", envSecureTest)
	}
	p := &secureProfile{env: map[string]string{}}
	for _, kv := range os.Environ() {
		if k, v, ok := strings.Cut(kv, "="); ok && strings.HasPrefix(k, "ORDERSTREAM_") && k != envSecureTest {
			p.env[k] = v
		}
	}
	var missing []string
	for _, k := range secureVars {
		if p.env[k] == "" {
			missing = append(missing, k)
		}
	}
	if len(missing) > 0 {
		t.Fatalf("%s=1 but %s unset: eval \"$(deploy/local/services.sh env --secure)\"", envSecureTest, strings.Join(missing, ", "))
	}
	p.tls = filepath.Dir(p.env["ORDERSTREAM_KAFKA_TLS_CA_FILE"])
	pg, err := url.Parse(p.env["ORDERSTREAM_PG_URL"])
	if err != nil {
		t.Fatalf("ORDERSTREAM_PG_URL: not a URL")
	}
	search, err := url.Parse(p.env["ORDERSTREAM_SEARCH_URL"])
	if err != nil {
		t.Fatalf("ORDERSTREAM_SEARCH_URL: not a URL")
	}
	for service, addr := range map[string]string{"postgres": pg.Host, "kafka": p.env["ORDERSTREAM_KAFKA_BROKERS"],
		"clickhouse": p.env["ORDERSTREAM_CLICKHOUSE_ADDR"], "search (nginx)": search.Host} {
		c, err := net.DialTimeout("tcp", addr, 3*time.Second)
		if err != nil {
			t.Fatalf("secure %s at %s does not answer (%v): start it with `deploy/local/services.sh up --secure`", service, addr, err)
		}
		c.Close()
	}
	for _, k := range []string{"ORDERSTREAM_PG_PASSWORD_FILE", "ORDERSTREAM_KAFKA_SASL_PASSWORD_FILE", "ORDERSTREAM_CLICKHOUSE_PASSWORD_FILE", "ORDERSTREAM_SEARCH_PASSWORD_FILE"} {
		p.secrets = append(p.secrets, strings.TrimSpace(string(readFile(t, p.env[k]))))
	}
	// A private key's lines of base64 are secrets as much as a password.
	for _, line := range strings.Split(string(readFile(t, p.env["ORDERSTREAM_KAFKA_TLS_KEY_FILE"])), "\n") {
		if len(line) >= 40 && !strings.HasPrefix(line, "-----") {
			p.secrets = append(p.secrets, line)
		}
	}
	return p
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// with returns the profile's environment with changes applied (an empty
// value unsets the variable), as NAME=value lines.
func (p *secureProfile) with(changes ...string) []string {
	env := map[string]string{}
	for k, v := range p.env {
		env[k] = v
	}
	for _, kv := range changes {
		k, v, _ := strings.Cut(kv, "=")
		if v == "" {
			delete(env, k)
		} else {
			env[k] = v
		}
	}
	out := make([]string, 0, len(env))
	for k, v := range env {
		out = append(out, k+"="+v)
	}
	return out
}

// checkNoSecret fails t when any secret of the profile appears in out, the
// output of process name.
func (p *secureProfile) checkNoSecret(t *testing.T, name, out string) {
	t.Helper()
	for _, s := range p.secrets {
		if strings.Contains(out, s) {
			t.Errorf("%s printed a secret (%d characters starting %q)", name, len(s), s[:4])
		}
	}
}

// daemon is one orderstream daemon run in a process of its own (see
// TestMain), everything it prints captured.
type daemon struct {
	name string
	cmd  *exec.Cmd
	out  *lockedBuffer
	done chan error
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(b)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// startDaemon starts orderstream args with env; the daemon is stopped
// (SIGTERM, then SIGKILL after 30 s) at t's cleanup at the latest.
func startDaemon(t *testing.T, name string, env []string, args ...string) *daemon {
	t.Helper()
	raw, err := json.Marshal(args)
	if err != nil {
		t.Fatal(err)
	}
	d := &daemon{name: name, out: &lockedBuffer{}, done: make(chan error, 1)}
	d.cmd = exec.Command(os.Args[0])
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "ORDERSTREAM_") {
			d.cmd.Env = append(d.cmd.Env, kv)
		}
	}
	d.cmd.Env = append(append(d.cmd.Env, envMainArgs+"="+string(raw)), env...)
	d.cmd.Stdout, d.cmd.Stderr = d.out, d.out
	if err := d.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { d.done <- d.cmd.Wait() }()
	t.Cleanup(func() { d.stop(t) })
	return d
}

// stop ends the daemon with SIGTERM (SIGKILL after 30 s) and returns its
// output; it fails t when the daemon had failed by itself. Idempotent.
func (d *daemon) stop(t *testing.T) string {
	t.Helper()
	if d.cmd.ProcessState == nil {
		_ = d.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case err := <-d.done:
			if err != nil {
				t.Errorf("%s: %v; output:\n%s", d.name, err, d.out)
			}
		case <-time.After(30 * time.Second):
			_ = d.cmd.Process.Kill()
			<-d.done
			t.Errorf("%s did not stop within 30 s of SIGTERM", d.name)
		}
	}
	return d.out.String()
}

// alive fails t when the daemon has ended.
func (d *daemon) alive(t *testing.T) {
	t.Helper()
	select {
	case err := <-d.done:
		d.done <- err
		t.Fatalf("%s ended: %v; output:\n%s", d.name, err, d.out)
	default:
	}
}

// TestSecurePipeline runs the whole pipeline on the secure profile, with TLS
// on every hop, a client certificate towards Kafka and PostgreSQL and SASL
// (SCRAM-SHA-512) on Kafka: migrate, import of a sample of the real file,
// the relay, both projection daemons and the API. The read models are
// checked as the plain suite checks them: `verify all` (every order of
// the write side against each read model) and the API's answers against
// the figures computed from the CSV (testfixture.ComputeExpected). No
// process prints a secret.
func TestSecurePipeline(t *testing.T) {
	p := newSecureProfile(t)
	start := time.Now()
	const rows = 3000 // 138 documents: 132 sales, 6 credit notes
	sample := testfixture.SampleFile(t, rows)
	exp, err := testfixture.ComputeExpected(sample)
	if err != nil {
		t.Fatal(err)
	}

	name := testenv.Name("secure")
	pgURL := testenv.NewDatabase(t) // on the secure server: ORDERSTREAM_PG_URL and its password file
	p.cleanUp(t, name, name+"_analytics", name+"_search")
	env := p.with("ORDERSTREAM_PG_URL="+pgURL, "ORDERSTREAM_TOPIC="+name, "ORDERSTREAM_CLICKHOUSE_DATABASE="+name,
		"ORDERSTREAM_LOG_FORMAT=json", "ORDERSTREAM_LOG_LEVEL=debug")
	groups := []string{"--analytics-group", name + "_analytics", "--search-group", name + "_search"}
	var outputs []string
	run := func(args ...string) string {
		t.Helper()
		out, code := runMain(t, env, args...)
		outputs = append(outputs, out)
		if code != 0 {
			t.Fatalf("orderstream %s: exit %d; output:\n%s", strings.Join(args, " "), code, out)
		}
		return out
	}

	run("migrate")
	run("analytics", "migrate")
	relayAddr, analyticsAddr, searchAddr, apiAddr := freeAddr(t), freeAddr(t), freeAddr(t), freeAddr(t)
	daemons := []*daemon{
		startDaemon(t, "relay", env, "relay", "--slot", name, "--metrics-addr", relayAddr),
		startDaemon(t, "consume analytics", env, "consume", "analytics", "--group", name+"_analytics", "--instance-id", "none",
			"--metrics-addr", analyticsAddr, "--slot", name),
		startDaemon(t, "consume search", env, "consume", "search", "--group", name+"_search", "--instance-id", "none",
			"--index-prefix", name, "--metrics-addr", searchAddr, "--slot", name),
	}
	run("import", sample, "--progress", "never")
	// Caught up: the relay and both daemons (80 s stays within runMain's bound of 90 s).
	run(append([]string{"status", "--wait", "80s", "--slot", name, "--index-prefix", name}, groups...)...)
	for _, d := range daemons {
		d.alive(t)
	}
	verified := run(append([]string{"verify", "all", "--slot", name, "--index-prefix", name}, groups...)...)
	if agree := fmt.Sprintf("%d of %d orders agree with the write side, 0 in flight", exp.Total.Documents, exp.Total.Documents); strings.Count(verified, agree) != 2 {
		t.Errorf("verify all: want %q for analytics and search; output:\n%s", agree, verified)
	}

	api := startDaemon(t, "api", env, "api", "--auth", "none", "--listen", apiAddr, "--index-prefix", name)
	daemons = append(daemons, api)
	var summary struct {
		NetRevenue  string `json:"net_revenue"`
		Orders      int64  `json:"orders"`
		CreditNotes int64  `json:"credit_notes"`
		Customers   int64  `json:"customers"`
	}
	getJSON(t, api, "http://"+apiAddr+"/api/v1/analytics/summary", &summary)
	want := exp.Total
	if net, err := decimal.NewFromString(summary.NetRevenue); err != nil || !net.Equal(want.Net) || summary.Orders != int64(want.Orders) ||
		summary.CreditNotes != int64(want.ByKind[schemas.KindCreditNote]) || summary.Customers != int64(want.Customers) {
		t.Errorf("API summary %+v; the CSV sample: net %s, %d orders, %d credit notes, %d customers",
			summary, want.Net, want.Orders, want.ByKind[schemas.KindCreditNote], want.Customers)
	}
	const number = "536365" // the sample's first document
	var order struct {
		OrderNumber string `json:"order_number"`
		Total       string `json:"total"`
		Lines       []any  `json:"lines"`
	}
	getJSON(t, api, "http://"+apiAddr+"/api/v1/orders/"+csvimport.OrderID(number), &order)
	total, err := decimal.NewFromString(order.Total)
	if d := exp.Docs[number]; err != nil || order.OrderNumber != number || !total.Equal(d.Total) || len(order.Lines) != d.Lines {
		t.Errorf("API order %s: %s, total %s, %d lines; the CSV: total %s, %d lines", number, order.OrderNumber, order.Total, len(order.Lines), d.Total, d.Lines)
	}

	for _, d := range daemons {
		outputs = append(outputs, d.stop(t))
	}
	lines := 0
	for i, out := range outputs {
		p.checkNoSecret(t, fmt.Sprintf("process %d", i), out)
		lines += strings.Count(out, "\n")
	}
	if lines < 20 {
		t.Errorf("only %d lines of output captured at debug level: the capture is broken", lines)
	}
	t.Logf("%d documents through every secure hop in %s; %d lines of output checked for secrets",
		want.Documents, time.Since(start).Round(time.Millisecond), lines)
}

// getJSON polls url (served by d) until it answers 200, at most a minute,
// and decodes the body into v.
func getJSON(t *testing.T, d *daemon, url string, v any) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		d.alive(t)
		resp, err := http.Get(url)
		if err == nil {
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				if err := json.Unmarshal(body, v); err != nil {
					t.Fatalf("GET %s: %v: %s", url, err, body)
				}
				return
			}
			err = fmt.Errorf("status %d: %s", resp.StatusCode, body)
		}
		if time.Now().After(deadline) {
			t.Fatalf("GET %s: %v", url, err)
		}
		time.Sleep(200 * time.Millisecond) // polling a condition with a deadline
	}
}

// globals returns the settings of a command run in the profile's
// environment, for the test's own clients (set-up and clean-up) built as
// the commands build theirs.
func (p *secureProfile) globals(clickhouseDB string) *globals {
	g := &globals{searchEngine: "opensearch", log: slog.New(slog.DiscardHandler)}
	e := p.env
	g.conn.Kafka.Brokers = strings.Split(e["ORDERSTREAM_KAFKA_BROKERS"], ",")
	g.conn.Kafka.TLS = connect.TLS{Enabled: true, CAFile: e["ORDERSTREAM_KAFKA_TLS_CA_FILE"],
		CertFile: e["ORDERSTREAM_KAFKA_TLS_CERT_FILE"], KeyFile: e["ORDERSTREAM_KAFKA_TLS_KEY_FILE"]}
	g.conn.Kafka.SASLMechanism = e["ORDERSTREAM_KAFKA_SASL_MECHANISM"]
	g.conn.Kafka.SASLUser = e["ORDERSTREAM_KAFKA_SASL_USER"]
	g.conn.Kafka.SASLPasswordFile = e["ORDERSTREAM_KAFKA_SASL_PASSWORD_FILE"]
	g.conn.ClickHouse = connect.ClickHouse{Addr: e["ORDERSTREAM_CLICKHOUSE_ADDR"], Database: clickhouseDB, User: e["ORDERSTREAM_CLICKHOUSE_USER"],
		PasswordFile: e["ORDERSTREAM_CLICKHOUSE_PASSWORD_FILE"], TLS: connect.TLS{Enabled: true, CAFile: e["ORDERSTREAM_CLICKHOUSE_TLS_CA_FILE"]}}
	g.conn.Search = connect.Search{URL: e["ORDERSTREAM_SEARCH_URL"], User: e["ORDERSTREAM_SEARCH_USER"],
		PasswordFile: e["ORDERSTREAM_SEARCH_PASSWORD_FILE"], TLS: connect.TLS{CAFile: e["ORDERSTREAM_SEARCH_TLS_CA_FILE"]}}
	return g
}

// cleanUp removes, at t's cleanup, what the pipeline made under name on
// the secure Kafka, ClickHouse and search engine (the write side's
// database goes with testenv.NewDatabase).
func (p *secureProfile) cleanUp(t *testing.T, name string, groups ...string) {
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		g := p.globals(name)
		var errs []error
		if cl, err := g.kafkaClient(); err == nil {
			adm := kadm.NewClient(cl)
			for _, group := range groups {
				errs = append(errs, consumers.DeleteGroup(ctx, adm, group))
			}
			_, err := adm.DeleteTopics(ctx, name, name+".dlq")
			errs = append(errs, err)
			cl.Close()
		} else {
			errs = append(errs, err)
		}
		if cfg, err := g.analyticsConfig(); err == nil {
			conn, err := analytics.Open(cfg)
			if err == nil {
				errs = append(errs, conn.Exec(ctx, "DROP DATABASE IF EXISTS `"+name+"`"), conn.Close())
			}
			errs = append(errs, err)
		} else {
			errs = append(errs, err)
		}
		if eng, err := g.searchClient(); err == nil {
			_, err := eng.DeleteIndex(ctx, name+"_*")
			errs = append(errs, err)
		} else {
			errs = append(errs, err)
		}
		if err := errors.Join(errs...); err != nil {
			t.Logf("clean-up of %s: %v", name, err)
		}
	})
}

// TestSecureRefusals: every way a client can be wrong about a secure
// service ends within seconds with an error that names the service and the
// setting to fix, and prints no secret. Each case changes one setting of
// the working environment.
func TestSecureRefusals(t *testing.T) {
	p := newSecureProfile(t)
	dir := t.TempDir()
	wrong := filepath.Join(dir, "wrong-password")
	if err := os.WriteFile(wrong, []byte("not-the-password\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tlsFile := func(name string) string { return filepath.Join(p.tls, name) }
	pgURL := func(edit func(q url.Values)) string {
		u, err := url.Parse(p.env["ORDERSTREAM_PG_URL"])
		if err != nil {
			t.Fatal(err)
		}
		q := u.Query()
		edit(q)
		u.RawQuery = q.Encode()
		return "ORDERSTREAM_PG_URL=" + u.String()
	}
	search, err := url.Parse(p.env["ORDERSTREAM_SEARCH_URL"])
	if err != nil {
		t.Fatal(err)
	}
	kafkaAddr, chAddr := p.env["ORDERSTREAM_KAFKA_BROKERS"], p.env["ORDERSTREAM_CLICKHOUSE_ADDR"]
	topic := []string{"topic", "create", "--topic", testenv.Name("refused")}
	clickhouse := []string{"analytics", "summary"}
	searchCmd := []string{"search", "anything", "--index-prefix", testenv.Name("refused")}
	postgres := []string{"migrate"}

	tests := []struct {
		name   string
		change []string
		args   []string
		want   []string // every one in the output (case aside)
	}{
		{"kafka wrong password", []string{"ORDERSTREAM_KAFKA_SASL_PASSWORD_FILE=" + wrong}, topic,
			[]string{"kafka refused the SASL login", "--kafka-sasl-password"}},
		{"kafka unknown SASL user", []string{"ORDERSTREAM_KAFKA_SASL_USER=intruder"}, topic,
			[]string{"kafka refused the SASL login", "--kafka-sasl-user"}},
		{"kafka server certificate from an untrusted CA", []string{"ORDERSTREAM_KAFKA_TLS_CA_FILE=" + tlsFile("untrusted-ca.pem")}, topic,
			[]string{"kafka at " + kafkaAddr + ": TLS handshake failed", "untrusted CA", "--kafka-tls-ca-file"}},
		{"kafka plaintext client", []string{"ORDERSTREAM_KAFKA_TLS=false", "ORDERSTREAM_KAFKA_TLS_CA_FILE=", "ORDERSTREAM_KAFKA_TLS_CERT_FILE=", "ORDERSTREAM_KAFKA_TLS_KEY_FILE="}, topic,
			[]string{"kafka", kafkaAddr, "--kafka-tls"}},
		{"kafka expired client certificate", []string{"ORDERSTREAM_KAFKA_TLS_CERT_FILE=" + tlsFile("client-expired.pem"), "ORDERSTREAM_KAFKA_TLS_KEY_FILE=" + tlsFile("client-expired.key")}, topic,
			[]string{"kafka at " + kafkaAddr, "refused the client certificate", "--kafka-tls-cert-file"}},

		{"postgres wrong password", []string{"ORDERSTREAM_PG_PASSWORD_FILE=" + wrong}, postgres,
			[]string{"postgresql refused the login", "--pg-password-file"}},
		{"postgres server certificate from an untrusted CA", []string{pgURL(func(q url.Values) { q.Set("sslrootcert", tlsFile("untrusted-ca.pem")) })}, postgres,
			[]string{"postgres", "sslrootcert", "--pg-url"}},
		{"postgres plaintext client", []string{pgURL(func(q url.Values) {
			q.Set("sslmode", "disable")
			q.Del("sslrootcert")
			q.Del("sslcert")
			q.Del("sslkey")
		})}, postgres,
			[]string{"postgresql refused the login", "sslmode"}},
		{"postgres expired client certificate", []string{pgURL(func(q url.Values) {
			q.Set("sslcert", tlsFile("client-expired.pem"))
			q.Set("sslkey", tlsFile("client-expired.key"))
		})}, postgres,
			[]string{"postgres", "sslcert", "--pg-url"}},

		{"clickhouse wrong password", []string{"ORDERSTREAM_CLICKHOUSE_PASSWORD_FILE=" + wrong}, clickhouse,
			[]string{"clickhouse refused the login", "--clickhouse-password"}},
		{"clickhouse default user", []string{"ORDERSTREAM_CLICKHOUSE_USER=default", "ORDERSTREAM_CLICKHOUSE_PASSWORD_FILE="}, clickhouse,
			[]string{"clickhouse refused the login", "--clickhouse-user"}},
		{"clickhouse server certificate from an untrusted CA", []string{"ORDERSTREAM_CLICKHOUSE_TLS_CA_FILE=" + tlsFile("untrusted-ca.pem")}, clickhouse,
			[]string{"clickhouse at " + chAddr + ": TLS handshake failed", "untrusted CA", "--clickhouse-tls-ca-file"}},
		{"clickhouse plaintext client", []string{"ORDERSTREAM_CLICKHOUSE_TLS=false", "ORDERSTREAM_CLICKHOUSE_TLS_CA_FILE="}, clickhouse,
			[]string{"clickhouse", chAddr, "--clickhouse-tls"}},

		{"search wrong password", []string{"ORDERSTREAM_SEARCH_PASSWORD_FILE=" + wrong}, searchCmd,
			[]string{"search", "--search-password"}},
		{"search server certificate from an untrusted CA", []string{"ORDERSTREAM_SEARCH_TLS_CA_FILE=" + tlsFile("untrusted-ca.pem")}, searchCmd,
			[]string{"search at " + search.Host + ": TLS handshake failed", "untrusted CA", "--search-tls-ca-file"}},
		{"search plaintext client", []string{"ORDERSTREAM_SEARCH_URL=http://" + search.Host, "ORDERSTREAM_SEARCH_TLS_CA_FILE="}, searchCmd,
			[]string{"search", search.Host, "https://"}},
	}
	// Bound of each refusal: a clear error at once, not a retry loop that
	// gives up at some timeout.
	const bound = 30 * time.Second
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			start := time.Now()
			out, code := runMain(t, p.with(append(tt.change, "ORDERSTREAM_LOG_LEVEL=debug")...), tt.args...)
			took := time.Since(start)
			p.checkNoSecret(t, tt.name, out)
			if code == 0 {
				t.Fatalf("exit 0, want a refusal; output:\n%s", out)
			}
			for _, w := range tt.want {
				if !strings.Contains(strings.ToLower(out), strings.ToLower(w)) {
					t.Errorf("output does not say %q:\n%s", w, out)
				}
			}
			if took > bound {
				t.Errorf("refusal took %s, want under %s", took.Round(time.Millisecond), bound)
			}
			t.Logf("exit %d after %s", code, took.Round(time.Millisecond))
		})
	}
}
