package connect

import (
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"syscall"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// ClickHouse exception codes of a refused login (ClickHouse's
// src/Common/ErrorCodes.cpp).
const (
	chUnknownUser          = 192
	chWrongPassword        = 193
	chRequiredPassword     = 194
	chAuthenticationFailed = 516
)

// HTTPStatusError is a non-2xx answer of the search engine, as its
// adapter reports it (*search.EngineError); Explain classifies it by
// status.
type HTTPStatusError interface {
	error
	// HTTPStatus is the status code of the answer.
	HTTPStatus() int
	// BaseURL is the engine's URL as configured, password redacted.
	BaseURL() string
	// FromEngine reports whether the body was the engine's own JSON error
	// (error.type), not a page of a proxy in front of it.
	FromEngine() bool
}

// Explain returns err with the settings to check appended when it is a
// service refusing orderstream's connection or credentials: Kafka SASL, a
// ClickHouse login, a PostgreSQL password or TLS setting, a client
// certificate PostgreSQL refused, the search engine's 401/403, or its
// 400 to plain HTTP on a TLS port. Other errors come back unchanged. The
// result wraps err (errors.Is/As see through it).
func Explain(err error) error {
	if err == nil {
		return nil
	}
	var hint string
	var chErr *clickhouse.Exception
	var pgErr *pgconn.PgError
	var firstEOF *kgo.ErrFirstReadEOF
	var pgConnect *pgconn.ConnectError
	var unknownCA x509.UnknownAuthorityError
	var hostname x509.HostnameError
	var status HTTPStatusError
	switch {
	case errors.As(err, &pgConnect) && errors.As(err, &unknownCA):
		hint = "postgresql's certificate is signed by an untrusted CA: set sslrootcert=<CA file> in --pg-url (with sslmode=verify-full)"
	case errors.As(err, &pgConnect) && errors.As(err, &hostname):
		hint = fmt.Sprintf("postgresql's certificate is not valid for %q: connect by a name it holds (sslmode=verify-full checks the host of --pg-url)", hostname.Host)
	case errors.As(err, &pgConnect) && strings.Contains(err.Error(), "server refused TLS connection"):
		hint = "postgresql does not offer TLS on this port: check the host and port of --pg-url, or its sslmode"
	case errors.As(err, &pgConnect) && clientCertRefused(err):
		hint = "postgresql refused the client certificate (missing, expired or from a CA it does not trust): check sslcert and sslkey in --pg-url"
	case errors.As(err, &pgConnect) && (errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)):
		// With TLS 1.3 the server checks the client's certificate after
		// the client's side of the handshake is done: its refusal (an
		// alert, then a close) often reaches the client as a reset of
		// the connection it already writes the startup message to.
		hint = "postgresql reset the connection before its first answer: it may have refused the client certificate (missing, expired or from a CA it does not trust; check sslcert and sslkey in --pg-url), or be shutting down"
	case errors.As(err, &firstEOF):
		hint = "kafka closed the connection at once: the listener's protocol (PLAINTEXT, SSL, SASL_PLAINTEXT, SASL_SSL) and the client's differ; check --kafka-tls and --kafka-sasl-mechanism against the listener of --kafka-brokers"
	case errors.Is(err, kerr.SaslAuthenticationFailed):
		hint = "kafka refused the SASL login: check --kafka-sasl-mechanism, --kafka-sasl-user and --kafka-sasl-password(-file), or for OAUTHBEARER --kafka-oauth-*"
	case errors.Is(err, kerr.UnsupportedSaslMechanism), errors.Is(err, kerr.IllegalSaslState):
		hint = "kafka does not accept this SASL mechanism on this listener: check --kafka-sasl-mechanism and --kafka-brokers"
	case errors.As(err, &chErr) && (chErr.Code == chUnknownUser || chErr.Code == chWrongPassword || chErr.Code == chRequiredPassword || chErr.Code == chAuthenticationFailed):
		hint = "clickhouse refused the login: check --clickhouse-user and --clickhouse-password(-file)"
	case errors.As(err, &pgErr) && (pgErr.Code == "28P01" || pgErr.Code == "28000"):
		hint = "postgresql refused the login: check the user in --pg-url and its password (--pg-password-file, or passfile in --pg-url); with hostssl rules, sslmode"
	case errors.As(err, &status) && status.HTTPStatus() == http.StatusUnauthorized:
		hint = fmt.Sprintf("search at %s refused the login (HTTP 401): check --search-user and --search-password(-file), or --search-api-key(-file)", status.BaseURL())
	case errors.As(err, &status) && status.HTTPStatus() == http.StatusForbidden:
		hint = fmt.Sprintf("search at %s denied the request (HTTP 403): the user of --search-user (or the key of --search-api-key) lacks the privilege for it", status.BaseURL())
	case errors.As(err, &status) && status.HTTPStatus() == http.StatusBadRequest && !status.FromEngine() && strings.HasPrefix(status.BaseURL(), "http://"):
		hint = fmt.Sprintf("search at %s answered plain HTTP with 400 and no engine error, as a TLS port does: use https://%s in --search-url (with --search-tls-ca-file)", status.BaseURL(), strings.TrimPrefix(status.BaseURL(), "http://"))
	default:
		return err
	}
	return &explained{err: err, hint: hint}
}

type explained struct {
	err  error
	hint string
}

func (e *explained) Error() string { return fmt.Sprintf("%v\n  %s", e.err, e.hint) }
func (e *explained) Unwrap() error { return e.err }
