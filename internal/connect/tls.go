package connect

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"time"
)

// TLS is the TLS setting of one service. The flags are --<prefix>-tls,
// --<prefix>-tls-ca-file, -cert-file, -key-file, -server-name and
// -insecure-skip-verify (which services offer which is up to AddFlags).
type TLS struct {
	// Enabled turns TLS on; any other field set turns it on as well.
	Enabled bool
	// CAFile is a PEM bundle of the CAs trusted for the server's
	// certificate; empty: the system's roots.
	CAFile string
	// CertFile and KeyFile are the client's PEM certificate and key
	// (mutual TLS); both or neither.
	CertFile, KeyFile string
	// ServerName is the name verified in the server's certificate (and
	// sent as SNI); empty: the host dialled.
	ServerName string
	// InsecureSkipVerify accepts any server certificate. Logged at WARN
	// every time a client is built.
	InsecureSkipVerify bool
}

// On reports whether TLS is used.
func (t TLS) On() bool {
	return t.Enabled || t.CAFile != "" || t.CertFile != "" || t.KeyFile != "" || t.ServerName != "" || t.InsecureSkipVerify
}

// validate reports every problem of t, naming the flags of prefix.
func (t TLS) validate(prefix string) error {
	var errs []error
	if (t.CertFile == "") != (t.KeyFile == "") {
		errs = append(errs, fmt.Errorf("--%s-tls-cert-file and --%s-tls-key-file go together: set both for a client certificate, or neither", prefix, prefix))
	}
	for _, f := range []struct{ flag, path string }{{"ca", t.CAFile}, {"cert", t.CertFile}, {"key", t.KeyFile}} {
		if f.path == "" {
			continue
		}
		if _, err := os.Stat(f.path); err != nil {
			errs = append(errs, fmt.Errorf("--%s-tls-%s-file %s: %w", prefix, f.flag, f.path, unwrapPath(err)))
		}
	}
	if len(errs) == 0 && t.On() {
		if _, err := t.load(prefix); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// load builds the *tls.Config of t (nil when TLS is off): minimum TLS 1.2.
func (t TLS) load(prefix string) (*tls.Config, error) {
	if !t.On() {
		return nil, nil
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: t.ServerName, InsecureSkipVerify: t.InsecureSkipVerify} //nolint:gosec // explicit setting, logged at WARN
	if t.CAFile != "" {
		pem, err := os.ReadFile(t.CAFile)
		if err != nil {
			return nil, fmt.Errorf("--%s-tls-ca-file %s: %w", prefix, t.CAFile, unwrapPath(err))
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("--%s-tls-ca-file %s: no PEM certificate in it", prefix, t.CAFile)
		}
		cfg.RootCAs = pool
	}
	if t.CertFile != "" || t.KeyFile != "" {
		pair, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("--%s-tls-cert-file %s / --%s-tls-key-file %s: %w", prefix, t.CertFile, prefix, t.KeyFile, unwrapPath(err))
		}
		cfg.Certificates = []tls.Certificate{pair}
	}
	return cfg, nil
}

// warnInsecure logs the WARN that an insecure-skip-verify deserves.
func (t TLS) warnInsecure(log *slog.Logger, service, prefix string) {
	if t.InsecureSkipVerify && log != nil {
		log.Warn(service+": TLS server certificate NOT verified (--"+prefix+"-tls-insecure-skip-verify): anyone on the path can read and change this traffic",
			"service", service)
	}
}

func unwrapPath(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// dialTLS dials addr and completes a TLS handshake under cfg, with the
// host of addr as server name unless cfg has one. A failed handshake comes
// back as a *HandshakeError naming the service, the address and the setting
// that fixes it. dialTimeout bounds dial and handshake (0: 10 s).
func dialTLS(ctx context.Context, d *net.Dialer, network, addr string, cfg *tls.Config, service, prefix string) (net.Conn, error) {
	conn, err := d.DialContext(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	c := cfg.Clone()
	if c.ServerName == "" {
		host, _, err := net.SplitHostPort(addr)
		if err != nil {
			host = addr
		}
		c.ServerName = host
	}
	tc := tls.Client(conn, c)
	hctx, cancel := context.WithTimeout(ctx, handshakeTimeout(d))
	defer cancel()
	if err := tc.HandshakeContext(hctx); err != nil {
		conn.Close()
		return nil, &HandshakeError{Service: service, Addr: addr, Prefix: prefix, Err: err}
	}
	return &alertConn{Conn: tc, service: service, addr: addr, prefix: prefix}, nil
}

// alertConn reports a TLS alert the server sends after the handshake as a
// *HandshakeError: with TLS 1.3 a server that refuses the client's
// certificate says so on the client's first read.
type alertConn struct {
	net.Conn
	service, addr, prefix string
}

func (c *alertConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	if _, ok := remoteAlert(err); ok {
		err = &HandshakeError{Service: c.service, Addr: c.addr, Prefix: c.prefix, Err: err}
	}
	return n, err
}

// remoteAlert returns the TLS alert the peer sent: crypto/tls reports one
// as a *net.OpError with Op "remote error" whose Err is the alert (an
// unexported type whose text is that of the same tls.AlertError).
func remoteAlert(err error) (tls.AlertError, bool) {
	var op *net.OpError
	if !errors.As(err, &op) || op.Op != "remote error" || op.Err == nil {
		return 0, false
	}
	for a := range 256 {
		if op.Err.Error() == tls.AlertError(a).Error() {
			return tls.AlertError(a), true
		}
	}
	return 0, false
}

// TLS alerts of a refused client certificate (RFC 8446 §6.2).
const (
	alertBadCertificate         tls.AlertError = 42
	alertUnsupportedCertificate tls.AlertError = 43
	alertCertificateRevoked     tls.AlertError = 44
	alertCertificateExpired     tls.AlertError = 45
	alertCertificateUnknown     tls.AlertError = 46
	alertUnknownCA              tls.AlertError = 48
	alertCertificateRequired    tls.AlertError = 116
)

// clientCertRefused reports whether err is the peer's TLS alert refusing
// the client's certificate (missing, expired, revoked, untrusted).
func clientCertRefused(err error) bool {
	a, ok := remoteAlert(err)
	if !ok {
		return false
	}
	switch a {
	case alertBadCertificate, alertUnsupportedCertificate, alertCertificateRevoked, alertCertificateExpired,
		alertCertificateUnknown, alertUnknownCA, alertCertificateRequired:
		return true
	}
	return false
}

func handshakeTimeout(d *net.Dialer) time.Duration {
	if d.Timeout > 0 {
		return d.Timeout
	}
	return 10 * time.Second
}

// HandshakeError is a failed TLS handshake with a service. Its text names
// the service, the address, what went wrong in words and the setting to
// change; Unwrap gives the crypto/tls or crypto/x509 error.
type HandshakeError struct {
	Service string // "kafka", "clickhouse", "search"
	Addr    string // host:port dialled
	Prefix  string // flag prefix of the service's settings
	Err     error
}

func (e *HandshakeError) Unwrap() error { return e.Err }

func (e *HandshakeError) Error() string {
	var (
		unknownCA x509.UnknownAuthorityError
		hostname  x509.HostnameError
		invalid   x509.CertificateInvalidError
		recHeader tls.RecordHeaderError
	)
	p := e.Prefix
	var hint string
	switch {
	case errors.As(e.Err, &unknownCA):
		hint = fmt.Sprintf("the server's certificate is signed by an untrusted CA: set --%s-tls-ca-file to the CA that signed it", p)
	case errors.As(e.Err, &hostname):
		hint = fmt.Sprintf("the server's certificate is not valid for %q: connect by a name it holds or set --%s-tls-server-name", hostname.Host, p)
	case errors.As(e.Err, &invalid) && invalid.Reason == x509.Expired:
		hint = "the server's certificate has expired (or is not yet valid): renew it"
	case errors.As(e.Err, &recHeader):
		hint = fmt.Sprintf("the server does not speak TLS on this port: use its TLS port, or turn TLS off (--%s-tls)", p)
	case clientCertRefused(e.Err):
		hint = fmt.Sprintf("the server refused the client certificate (missing, expired or from a CA it does not trust): check --%s-tls-cert-file and --%s-tls-key-file", p, p)
	default:
		hint = fmt.Sprintf("check the server's TLS port and --%s-tls-* settings", p)
	}
	return fmt.Sprintf("%s at %s: TLS handshake failed: %s (%v)", e.Service, e.Addr, hint, e.Err)
}
