package connect

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync/atomic"
	"syscall"
)

// dialPlain dials addr without TLS. The connection reports, as a
// *PlaintextError naming the service, the address and --<prefix>-tls, a
// server whose first bytes are a TLS alert record (a TLS port answering
// plaintext); with closeIsTLS, also a server that closes or resets the
// connection before sending a byte (what ClickHouse's secure port does).
func dialPlain(ctx context.Context, d *net.Dialer, network, addr, service, prefix string, closeIsTLS bool) (net.Conn, error) {
	conn, err := d.DialContext(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	return &plainConn{Conn: conn, service: service, addr: addr, prefix: prefix, closeIsTLS: closeIsTLS}, nil
}

// TLS record content type of an alert (RFC 8446 §5.1) and the major
// version byte of every SSL/TLS version.
const (
	tlsRecordAlert = 21
	tlsMajor       = 3
)

// plainConn is a plaintext connection that recognises a TLS server before
// the server's first byte (a write may run beside a read: received is
// atomic).
type plainConn struct {
	net.Conn
	service, addr, prefix string
	closeIsTLS            bool
	received              atomic.Bool // a byte arrived: the server speaks the client's protocol
}

func (c *plainConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	if c.received.Load() {
		return n, err
	}
	if n >= 2 && b[0] == tlsRecordAlert && b[1] == tlsMajor {
		return 0, &PlaintextError{Service: c.service, Addr: c.addr, Prefix: c.prefix}
	}
	if n > 0 {
		c.received.Store(true)
		return n, err
	}
	return n, c.closed(err)
}

func (c *plainConn) Write(b []byte) (int, error) {
	n, err := c.Conn.Write(b)
	if c.received.Load() {
		return n, err
	}
	return n, c.closed(err)
}

// closed turns a close or reset before the server's first byte into a
// *PlaintextError when the service closes so on a plaintext client.
func (c *plainConn) closed(err error) error {
	if err != nil && c.closeIsTLS && (errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)) {
		return &PlaintextError{Service: c.service, Addr: c.addr, Prefix: c.prefix, Err: err}
	}
	return err
}

// PlaintextError is a plaintext connection refused by a service that
// expects TLS on the port: the server answered with a TLS alert record, or
// (ClickHouse) closed the connection before its first byte. Its text names
// the service, the address and the flag that turns TLS on.
type PlaintextError struct {
	Service string // "kafka", "clickhouse"
	Addr    string // host:port dialled
	Prefix  string // flag prefix of the service's settings
	Err     error  // the read or write error; nil for a TLS alert record
}

func (e *PlaintextError) Unwrap() error { return e.Err }

func (e *PlaintextError) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("%s at %s closed the connection before answering (%v): when the port expects TLS, set --%s-tls (and --%s-tls-ca-file) or use the service's plaintext port", e.Service, e.Addr, e.Err, e.Prefix, e.Prefix)
	}
	return fmt.Sprintf("%s at %s answered with a TLS alert: the port expects TLS; set --%s-tls (and --%s-tls-ca-file), or use the service's plaintext port", e.Service, e.Addr, e.Prefix, e.Prefix)
}
