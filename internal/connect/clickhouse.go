package connect

import (
	"context"
	"crypto/tls"
	"errors"
	"log/slog"
	"net"
	"strings"
	"time"
)

// ClickHouse is how orderstream reaches ClickHouse's native protocol.
// Flags --clickhouse-addr, --clickhouse-database, --clickhouse-user,
// --clickhouse-password(-file), --clickhouse-tls*.
type ClickHouse struct {
	Addr         string // host:port of the native protocol (secure port with TLS)
	Database     string
	User         string // default "default"
	Password     Secret
	PasswordFile string
	TLS          TLS // no insecure-skip-verify flag: a CA file is the way
}

func (c ClickHouse) password() secretSetting {
	return secretSetting{value: c.Password, file: c.PasswordFile, valueFlag: "clickhouse-password", fileFlag: "clickhouse-password-file"}
}

// Validate reports every problem of c's connection settings at once.
func (c ClickHouse) Validate() error {
	var errs []error
	if c.Addr == "" {
		errs = append(errs, errors.New("--clickhouse-addr is empty: give host:port of the native protocol"))
	} else {
		for _, a := range strings.Split(c.Addr, ",") {
			if !validHostPort(strings.TrimSpace(a)) {
				errs = append(errs, errors.New("--clickhouse-addr: want host:port (port 1 to 65535), or several comma-separated (credentials go in --clickhouse-user and --clickhouse-password-file)"))
				break
			}
		}
	}
	errs = append(errs, c.password().check(), c.TLS.validate("clickhouse"))
	return errors.Join(errs...)
}

// ClickHouseConn is what clickhouse-go's Options need from c.
type ClickHouseConn struct {
	Addr     string
	User     string
	Password string
	// TLS is nil without TLS. With TLS, Dial does the handshake and
	// reports a failed one as a *HandshakeError; without, Dial reports a
	// TLS port (a close before the server's first byte) as a
	// *PlaintextError. Set both Options.TLS and Options.DialContext.
	TLS  *tls.Config
	Dial func(ctx context.Context, addr string) (net.Conn, error)
}

// Conn resolves c (password file, certificates) for clickhouse-go. log
// receives the WARN of an insecure-skip-verify (nil: none).
func (c ClickHouse) Conn(log *slog.Logger, dialTimeout time.Duration) (ClickHouseConn, error) {
	if err := c.Validate(); err != nil {
		return ClickHouseConn{}, err
	}
	pw, err := c.password().resolve()
	if err != nil {
		return ClickHouseConn{}, err
	}
	out := ClickHouseConn{Addr: c.Addr, User: c.User, Password: pw.Reveal()}
	cfg, err := c.TLS.load("clickhouse")
	if err != nil {
		return ClickHouseConn{}, err
	}
	d := &net.Dialer{Timeout: dialTimeout}
	if cfg == nil {
		out.Dial = func(ctx context.Context, addr string) (net.Conn, error) {
			return dialPlain(ctx, d, "tcp", addr, "clickhouse", "clickhouse", true)
		}
		return out, nil
	}
	c.TLS.warnInsecure(log, "clickhouse", "clickhouse")
	out.TLS = cfg
	out.Dial = func(ctx context.Context, addr string) (net.Conn, error) {
		return dialTLS(ctx, d, "tcp", addr, cfg, "clickhouse", "clickhouse")
	}
	return out, nil
}
