package connect

import (
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// tlsAlert is what a TLS listener (Kafka's SASL_SSL, a JVM's SSLEngine)
// sends to a client whose first bytes are not a ClientHello: a fatal
// handshake_failure alert record of TLS 1.2.
var tlsAlert = []byte{21, 3, 3, 0, 2, 2, 40}

// Servers of TestPlaintextAgainstTLSPort, each reading the client's first
// byte: one that answers with a TLS alert, one that resets the connection,
// one that closes it, one that speaks plaintext.
var (
	alertServer = func(c net.Conn) {
		if _, err := io.ReadFull(c, make([]byte, 1)); err == nil {
			_, _ = c.Write(tlsAlert)
		}
	}
	resetServer = func(c net.Conn) {
		_, _ = io.ReadFull(c, make([]byte, 1))
		_ = c.(*net.TCPConn).SetLinger(0)
	}
	closeServer = func(c net.Conn) { _, _ = io.ReadFull(c, make([]byte, 1)) }
	helloServer = func(c net.Conn) {
		if _, err := io.ReadFull(c, make([]byte, 1)); err == nil {
			_, _ = io.WriteString(c, "hello")
		}
	}
)

// TestPlaintextAgainstTLSPort: a plaintext connection to a port that
// speaks TLS fails with a *PlaintextError naming the service, the address
// and --<service>-tls; a plaintext server's bytes and close pass unchanged,
// and Kafka's close at once stays the io.EOF franz-go classifies itself.
func TestPlaintextAgainstTLSPort(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		server     func(net.Conn)
		service    string
		closeIsTLS bool
		wantRead   string   // what the client reads when there is no error
		wantErr    []string // nil: no *PlaintextError
		wantEOF    bool     // the error is io.EOF itself
	}{
		{"kafka TLS alert", alertServer, "kafka", false, "", []string{"kafka at ", "TLS alert", "--kafka-tls"}, false},
		{"kafka close", closeServer, "kafka", false, "", nil, true},
		{"kafka plaintext", helloServer, "kafka", false, "hello", nil, false},
		{"clickhouse TLS alert", alertServer, "clickhouse", true, "", []string{"clickhouse at ", "--clickhouse-tls"}, false},
		{"clickhouse reset", resetServer, "clickhouse", true, "", []string{"clickhouse at ", "closed the connection before answering", "--clickhouse-tls"}, false},
		{"clickhouse close", closeServer, "clickhouse", true, "", []string{"clickhouse at ", "--clickhouse-tls"}, false},
		{"clickhouse plaintext", helloServer, "clickhouse", true, "hello", nil, false},
	}
	for _, tt := range tests {
		addr := serve(t, "127.0.0.1:0", tt.server)
		c, err := dialPlain(context.Background(), &net.Dialer{Timeout: 5 * time.Second}, "tcp", addr, tt.service, tt.service, tt.closeIsTLS)
		if err != nil {
			t.Fatal(err)
		}
		_ = c.SetDeadline(time.Now().Add(5 * time.Second))
		_, err = c.Write([]byte("x"))
		var b []byte
		if err == nil {
			b, err = io.ReadAll(c)
		}
		c.Close()
		var pe *PlaintextError
		switch {
		case tt.wantErr != nil:
			if !errors.As(err, &pe) {
				t.Errorf("%s: %v, want a *PlaintextError", tt.name, err)
				continue
			}
			for _, w := range append(tt.wantErr, addr) {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("%s: %q does not say %q", tt.name, err, w)
				}
			}
		case tt.wantEOF:
			// io.ReadAll hides io.EOF: read once more on a fresh connection.
			c, err := dialPlain(context.Background(), &net.Dialer{}, "tcp", addr, tt.service, tt.service, tt.closeIsTLS)
			if err != nil {
				t.Fatal(err)
			}
			_, _ = c.Write([]byte("x"))
			if _, err := c.Read(make([]byte, 8)); err != io.EOF {
				t.Errorf("%s: read %v, want io.EOF itself", tt.name, err)
			}
			c.Close()
		default:
			if err != nil || string(b) != tt.wantRead {
				t.Errorf("%s: read %q, %v; want %q", tt.name, b, err, tt.wantRead)
			}
		}
	}
}

// TestKafkaPlaintextAgainstTLSAlert: franz-go without TLS against a
// listener that answers with a TLS alert (a real SASL_SSL broker) fails at
// once with an error naming kafka, the broker and --kafka-tls.
func TestKafkaPlaintextAgainstTLSAlert(t *testing.T) {
	t.Parallel()
	addr := serve(t, "127.0.0.1:0", alertServer)
	opts, err := Kafka{Brokers: []string{addr}}.ClientOpts(nil)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	err = Explain(ping(append(opts, kgo.RequestRetries(0))))
	var pe *PlaintextError
	if !errors.As(err, &pe) {
		t.Fatalf("ping = %v, want a *PlaintextError", err)
	}
	for _, w := range []string{"kafka at " + addr, "--kafka-tls"} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("%q does not say %q", err, w)
		}
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("the failure took %s, want it at once", d)
	}
}
