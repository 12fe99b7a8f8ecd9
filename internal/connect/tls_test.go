package connect

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
)

// startKafka starts an in-process Kafka whose only listener is TLS with a
// certificate of ca and SASL SCRAM-SHA-512 user orderstream / password;
// with clientCA it requires a client certificate of clientCA too.
func startKafka(t *testing.T, ca, clientCA *testCA, password string) []string {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.TLS(ca.serverTLS(t, clientCA)),
		kfake.EnableSASL(), kfake.Superuser(SASLScramSHA512, "orderstream", password), kfake.SeedTopics(1, "t"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c.ListenAddrs()
}

// produceOne produces one record to topic t with opts and reads it back.
func produceOne(t *testing.T, opts []kgo.Opt) error {
	t.Helper()
	cl, err := kgo.NewClient(append(opts, kgo.ConsumeTopics("t"), kgo.RequestRetries(1))...)
	if err != nil {
		return err
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if err := cl.ProduceSync(ctx, &kgo.Record{Topic: "t", Value: []byte("v")}).FirstErr(); err != nil {
		return err
	}
	fs := cl.PollFetches(ctx)
	if err := fs.Err0(); err != nil {
		return err
	}
	if fs.NumRecords() != 1 {
		return fmt.Errorf("read %d records, want 1", fs.NumRecords())
	}
	return nil
}

// ping asks the brokers of opts for their API versions: the first request
// of every connection, after TLS and SASL.
func ping(opts []kgo.Opt) error {
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return err
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return cl.Ping(ctx)
}

func TestKafkaTLSAndSCRAM(t *testing.T) {
	t.Parallel()
	ca, other := newTestCA(t, "kafka-ca"), newTestCA(t, "other-ca")
	pwFile := writeFile(t, "pw", "kafka-pass\n")
	brokers := startKafka(t, ca, nil, "kafka-pass")
	good := Kafka{Brokers: brokers, TLS: TLS{CAFile: ca.file}, SASLMechanism: SASLScramSHA512, SASLUser: "orderstream", SASLPasswordFile: pwFile}

	opts, err := good.ClientOpts(nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := produceOne(t, opts); err != nil {
		t.Fatalf("TLS with the right CA and SCRAM-SHA-512: %v", err)
	}

	t.Run("untrusted CA", func(t *testing.T) {
		t.Parallel()
		k := good
		k.TLS.CAFile = other.file
		opts, err := k.ClientOpts(nil)
		if err != nil {
			t.Fatal(err)
		}
		err = ping(opts)
		var he *HandshakeError
		if !errors.As(err, &he) {
			t.Fatalf("ping = %v, want a *HandshakeError", err)
		}
		for _, want := range []string{"kafka at 127.0.0.1:", "untrusted CA", "--kafka-tls-ca-file"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("error %q does not say %q", err, want)
			}
		}
	})
	t.Run("wrong password", func(t *testing.T) {
		t.Parallel()
		k := good
		k.SASLPasswordFile, k.SASLPassword = "", NewSecret("wrong-pass")
		opts, err := k.ClientOpts(nil)
		if err != nil {
			t.Fatal(err)
		}
		// kfake closes the connection on a failed SCRAM exchange (a real
		// broker answers SASL_AUTHENTICATION_FAILED, see Explain).
		err = ping(opts)
		if err == nil {
			t.Fatal("ping with a wrong password succeeded")
		}
		if strings.Contains(err.Error(), "wrong-pass") {
			t.Errorf("error shows the password: %v", err)
		}
	})
	t.Run("server name not in the certificate", func(t *testing.T) {
		t.Parallel()
		k := good
		k.TLS.ServerName = "kafka.example.com"
		opts, err := k.ClientOpts(nil)
		if err != nil {
			t.Fatal(err)
		}
		err = ping(opts)
		if err == nil || !strings.Contains(err.Error(), "--kafka-tls-server-name") {
			t.Fatalf("ping = %v, want an error naming --kafka-tls-server-name", err)
		}
	})
}

// TestKafkaPlaintextAgainstTLS: a client without TLS against a TLS-only
// listener fails at once (no retry storm), and the error names the
// settings.
func TestKafkaPlaintextAgainstTLS(t *testing.T) {
	t.Parallel()
	brokers := startKafka(t, newTestCA(t, "kafka-ca"), nil, "pw")
	opts, err := Kafka{Brokers: brokers, SASLMechanism: SASLScramSHA512, SASLUser: "orderstream", SASLPassword: NewSecret("pw")}.ClientOpts(nil)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	err = Explain(ping(opts))
	if err == nil || !strings.Contains(err.Error(), "--kafka-tls") {
		t.Fatalf("ping = %v, want an error naming --kafka-tls", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("the failure took %s, want it at once", d)
	}
}

func TestKafkaMutualTLS(t *testing.T) {
	t.Parallel()
	ca, clientCA := newTestCA(t, "kafka-ca"), newTestCA(t, "client-ca")
	brokers := startKafka(t, ca, clientCA, "pw")
	cert, key, _ := clientCA.issue(t, "client", true, time.Now().Add(time.Hour))
	oldCert, oldKey, _ := clientCA.issue(t, "expired", true, time.Now().Add(-time.Minute))
	base := Kafka{Brokers: brokers, TLS: TLS{CAFile: ca.file}, SASLMechanism: SASLScramSHA512, SASLUser: "orderstream", SASLPassword: NewSecret("pw")}

	k := base
	k.TLS.CertFile, k.TLS.KeyFile = cert, key
	opts, err := k.ClientOpts(nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := ping(opts); err != nil {
		t.Fatalf("with a valid client certificate: %v", err)
	}
	for name, files := range map[string][2]string{"expired client certificate": {oldCert, oldKey}, "no client certificate": {}} {
		k := base
		k.TLS.CertFile, k.TLS.KeyFile = files[0], files[1]
		opts, err := k.ClientOpts(nil)
		if err != nil {
			t.Fatal(err)
		}
		err = ping(opts)
		if err == nil || !strings.Contains(err.Error(), "--kafka-tls-cert-file") {
			t.Errorf("%s: ping = %v, want an error naming --kafka-tls-cert-file", name, err)
		}
	}
}

func TestClickHouseTLSDial(t *testing.T) {
	t.Parallel()
	ca, other := newTestCA(t, "ch-ca"), newTestCA(t, "other-ca")
	srvTLS := ca.serverTLS(t, nil)
	addr := serve(t, "127.0.0.1:0", func(c net.Conn) {
		tc := tls.Server(c, srvTLS)
		if tc.Handshake() == nil {
			_, _ = io.WriteString(tc, "hello")
		}
	})
	for _, tt := range []struct {
		name    string
		ca      string
		wantErr []string
	}{
		{"trusted CA", ca.file, nil},
		{"untrusted CA", other.file, []string{"clickhouse at " + addr, "--clickhouse-tls-ca-file"}},
	} {
		conn, err := ClickHouse{Addr: addr, TLS: TLS{CAFile: tt.ca}}.Conn(nil, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if conn.TLS == nil || conn.Dial == nil {
			t.Fatalf("%s: Conn without TLS", tt.name)
		}
		c, err := conn.Dial(context.Background(), addr)
		wantErr(t, tt.name, err, tt.wantErr)
		if err == nil {
			b, _ := io.ReadAll(c)
			c.Close()
			if string(b) != "hello" {
				t.Errorf("%s: read %q over TLS, want hello", tt.name, b)
			}
		}
	}
}

func TestSearchTLSTransport(t *testing.T) {
	t.Parallel()
	ca, other, clientCA := newTestCA(t, "search-ca"), newTestCA(t, "other-ca"), newTestCA(t, "client-ca")
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, r.TLS.PeerCertificates[0].Subject.CommonName)
	}))
	srv.TLS = ca.serverTLS(t, clientCA)
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the refused handshakes are the point
	srv.StartTLS()
	t.Cleanup(srv.Close)
	cert, key, _ := clientCA.issue(t, "search-client", true, time.Now().Add(time.Hour))
	for _, tt := range []struct {
		name    string
		tls     TLS
		wantErr []string
	}{
		{"trusted CA and client certificate", TLS{CAFile: ca.file, CertFile: cert, KeyFile: key}, nil},
		{"untrusted CA", TLS{CAFile: other.file, CertFile: cert, KeyFile: key}, []string{"search at 127.0.0.1:", "--search-tls-ca-file"}},
		{"no client certificate", TLS{CAFile: ca.file}, []string{"search at 127.0.0.1:", "--search-tls-cert-file"}},
	} {
		c, err := Search{URL: srv.URL, TLS: tt.tls}.Conn(nil)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := (&http.Client{Transport: c.Transport, Timeout: 10 * time.Second}).Get(c.URL)
		wantErr(t, tt.name, err, tt.wantErr)
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if string(b) != "search-client" {
				t.Errorf("%s: server saw client %q, want search-client", tt.name, b)
			}
		}
	}
}

var _ net.Conn = (*alertConn)(nil)

// TestPostgresTLSErrorsNameTheSetting: pgx against a server whose
// certificate comes from another CA, or holds another name, or that refuses
// the client's expired certificate, fails with an error Explain completes
// with the --pg-url parameter to fix.
func TestPostgresTLSErrorsNameTheSetting(t *testing.T) {
	t.Parallel()
	ca, other := newTestCA(t, "pg-ca"), newTestCA(t, "other-ca")
	srvTLS := ca.serverTLS(t, nil)
	// A PostgreSQL server as far as TLS goes: it accepts the SSLRequest
	// ('S') and completes the handshake. On 127.0.0.1 (a name of its
	// certificate) and 127.0.0.2 (not one).
	pg := func(cfg *tls.Config) func(net.Conn) {
		return func(c net.Conn) {
			if _, err := io.ReadFull(c, make([]byte, 8)); err != nil {
				return
			}
			if _, err := c.Write([]byte("S")); err != nil {
				return
			}
			_ = tls.Server(c, cfg).Handshake()
		}
	}
	named, unnamed := serve(t, "127.0.0.1:0", pg(srvTLS)), serve(t, "127.0.0.2:0", pg(srvTLS))
	// One that requires a client certificate of clientCA.
	clientCA := newTestCA(t, "client-ca")
	mutual := serve(t, "127.0.0.1:0", pg(ca.serverTLS(t, clientCA)))
	oldCert, oldKey, _ := clientCA.issue(t, "expired", true, time.Now().Add(-time.Minute))
	for _, tt := range []struct {
		name, addr, ca, client, want string
	}{
		{"untrusted CA", named, other.file, "", "set sslrootcert=<CA file> in --pg-url"},
		{"name not in the certificate", unnamed, ca.file, "", `not valid for "127.0.0.2"`},
		{"expired client certificate", mutual, ca.file, "&sslcert=" + oldCert + "&sslkey=" + oldKey, "check sslcert and sslkey in --pg-url"},
	} {
		url := "postgres://u:pw@" + tt.addr + "/db?sslmode=verify-full&connect_timeout=5&sslrootcert=" + tt.ca + tt.client
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		_, err := pgconn.Connect(ctx, url)
		cancel()
		err = Explain(err)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: %v, want it to say %q", tt.name, err, tt.want)
		}
	}
}

// serve accepts connections on addr until the test ends, handing each to
// handle (closed after it) on a goroutine of its own; it returns the
// address listened on.
func serve(t *testing.T, addr string, handle func(net.Conn)) string {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				handle(c)
			}()
		}
	}()
	return ln.Addr().String()
}

// TestClientCertRefused: the alerts a server sends for a refused client
// certificate, as crypto/tls reports a received alert (a *net.OpError
// "remote error" around it, possibly wrapped), and nothing else.
func TestClientCertRefused(t *testing.T) {
	t.Parallel()
	remote := func(a tls.AlertError) error { return &net.OpError{Op: "remote error", Err: a} }
	for _, tt := range []struct {
		name string
		give error
		want bool
	}{
		{"expired certificate", remote(45), true},
		{"bad certificate, wrapped", fmt.Errorf("receive: %w", remote(42)), true},
		{"certificate required", remote(116), true},
		{"unknown CA", remote(48), true},
		{"handshake failure", remote(40), false},
		{"local alert", &net.OpError{Op: "local error", Err: tls.AlertError(45)}, false},
		{"read error", &net.OpError{Op: "read", Err: errors.New("tls: expired certificate")}, false},
		{"nil", nil, false},
	} {
		if got := clientCertRefused(tt.give); got != tt.want {
			t.Errorf("%s: clientCertRefused = %v, want %v", tt.name, got, tt.want)
		}
	}
}
