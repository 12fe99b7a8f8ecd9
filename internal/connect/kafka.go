package connect

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl"
	"github.com/twmb/franz-go/pkg/sasl/oauth"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"
)

// SASL mechanisms of Kafka.SASLMechanism.
const (
	SASLNone        = "none"
	SASLPlain       = "PLAIN"
	SASLScramSHA256 = "SCRAM-SHA-256"
	SASLScramSHA512 = "SCRAM-SHA-512"
	SASLOAuthBearer = "OAUTHBEARER"
)

// kafkaDialTimeout bounds a broker dial plus its TLS handshake.
const kafkaDialTimeout = 10 * time.Second

// Kafka is how orderstream reaches Kafka: seed brokers, TLS and SASL.
// Flags --kafka-brokers, --kafka-tls*, --kafka-sasl-*, --kafka-oauth-*.
type Kafka struct {
	// Brokers are the seed brokers, host:port. Required.
	Brokers []string
	// TLS of every broker connection (--kafka-tls …).
	TLS TLS
	// SASLMechanism is none (default), PLAIN, SCRAM-SHA-256, SCRAM-SHA-512
	// or OAUTHBEARER (case-insensitive).
	SASLMechanism string
	// SASLUser and SASLPassword (or SASLPasswordFile) authenticate PLAIN
	// and SCRAM.
	SASLUser         string
	SASLPassword     Secret
	SASLPasswordFile string
	// OAUTHBEARER: a client-credentials grant (RFC 6749 §4.4) at
	// OAuthTokenURL; the token is cached and fetched again before it
	// expires (see TokenCache).
	OAuthTokenURL         string
	OAuthClientID         string
	OAuthClientSecret     Secret
	OAuthClientSecretFile string
	OAuthScopes           []string
}

func (k Kafka) mechanism() string {
	m := strings.ToUpper(strings.TrimSpace(k.SASLMechanism))
	if m == "" || m == "NONE" {
		return SASLNone
	}
	return m
}

func (k Kafka) password() secretSetting {
	return secretSetting{value: k.SASLPassword, file: k.SASLPasswordFile, valueFlag: "kafka-sasl-password", fileFlag: "kafka-sasl-password-file"}
}

func (k Kafka) clientSecret() secretSetting {
	return secretSetting{value: k.OAuthClientSecret, file: k.OAuthClientSecretFile, valueFlag: "kafka-oauth-client-secret", fileFlag: "kafka-oauth-client-secret-file"}
}

// Validate reports every problem of k at once, each naming its flag.
func (k Kafka) Validate() error {
	var errs []error
	if len(k.Brokers) == 0 {
		errs = append(errs, errors.New("--kafka-brokers is empty: give at least one host:port"))
	}
	for _, b := range k.Brokers {
		if !validHostPort(b) {
			errs = append(errs, fmt.Errorf("--kafka-brokers %q: want host:port (port 1 to 65535)", b))
		}
	}
	errs = append(errs, k.TLS.validate("kafka"))
	switch m := k.mechanism(); m {
	case SASLNone:
	case SASLPlain, SASLScramSHA256, SASLScramSHA512:
		if k.SASLUser == "" {
			errs = append(errs, fmt.Errorf("--kafka-sasl-mechanism %s needs --kafka-sasl-user", m))
		}
		if err := k.password().check(); err != nil {
			errs = append(errs, err)
		} else if k.SASLPassword.IsZero() && k.SASLPasswordFile == "" {
			errs = append(errs, fmt.Errorf("--kafka-sasl-mechanism %s needs --kafka-sasl-password or --kafka-sasl-password-file", m))
		}
	case SASLOAuthBearer:
		if k.OAuthTokenURL == "" {
			errs = append(errs, errors.New("--kafka-sasl-mechanism OAUTHBEARER needs --kafka-oauth-token-url"))
		} else if u, err := url.Parse(k.OAuthTokenURL); err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
			errs = append(errs, fmt.Errorf("--kafka-oauth-token-url %s: want an http(s) URL", RedactURL(k.OAuthTokenURL)))
		}
		if k.OAuthClientID == "" {
			errs = append(errs, errors.New("--kafka-sasl-mechanism OAUTHBEARER needs --kafka-oauth-client-id"))
		}
		if err := k.clientSecret().check(); err != nil {
			errs = append(errs, err)
		} else if k.OAuthClientSecret.IsZero() && k.OAuthClientSecretFile == "" {
			errs = append(errs, errors.New("--kafka-sasl-mechanism OAUTHBEARER needs --kafka-oauth-client-secret or --kafka-oauth-client-secret-file"))
		}
	default:
		errs = append(errs, fmt.Errorf("--kafka-sasl-mechanism %q: want none, PLAIN, SCRAM-SHA-256, SCRAM-SHA-512 or OAUTHBEARER", k.SASLMechanism))
	}
	return errors.Join(errs...)
}

// ClientOpts returns the franz-go options that reach Kafka as k says:
// kgo.SeedBrokers, a dialer (doing TLS, whose handshake errors are
// *HandshakeError naming the setting to fix; without TLS, a TLS listener's
// alert is a *PlaintextError) and the SASL mechanism. Every
// Kafka client of orderstream is built with them; add the client's own
// options after. log receives the WARN of an insecure-skip-verify (nil: none).
// The error is Validate's.
func (k Kafka) ClientOpts(log *slog.Logger) ([]kgo.Opt, error) {
	if err := k.Validate(); err != nil {
		return nil, err
	}
	opts := []kgo.Opt{kgo.SeedBrokers(k.Brokers...)}
	tlsCfg, err := k.TLS.load("kafka")
	if err != nil {
		return nil, err
	}
	d := &net.Dialer{Timeout: kafkaDialTimeout}
	if tlsCfg != nil {
		k.TLS.warnInsecure(log, "kafka", "kafka")
		opts = append(opts, kgo.Dialer(func(ctx context.Context, network, host string) (net.Conn, error) {
			return dialTLS(ctx, d, network, host, tlsCfg, "kafka", "kafka")
		}))
	} else {
		// A broker that closes a plaintext connection at once is franz-go's
		// *kgo.ErrFirstReadEOF (see Explain); only the TLS alert is ours.
		opts = append(opts, kgo.Dialer(func(ctx context.Context, network, host string) (net.Conn, error) {
			return dialPlain(ctx, d, network, host, "kafka", "kafka", false)
		}))
	}
	mech, err := k.saslMechanism()
	if err != nil {
		return nil, err
	}
	if mech != nil {
		opts = append(opts, kgo.SASL(mech))
	}
	return opts, nil
}

// saslMechanism builds k's SASL mechanism with franz-go's own packages;
// nil for none.
func (k Kafka) saslMechanism() (sasl.Mechanism, error) {
	switch k.mechanism() {
	case SASLPlain, SASLScramSHA256, SASLScramSHA512:
		pw, err := k.password().resolve()
		if err != nil {
			return nil, err
		}
		switch k.mechanism() {
		case SASLPlain:
			return plain.Auth{User: k.SASLUser, Pass: pw.Reveal()}.AsMechanism(), nil
		case SASLScramSHA256:
			return scram.Auth{User: k.SASLUser, Pass: pw.Reveal()}.AsSha256Mechanism(), nil
		default:
			return scram.Auth{User: k.SASLUser, Pass: pw.Reveal()}.AsSha512Mechanism(), nil
		}
	case SASLOAuthBearer:
		secret, err := k.clientSecret().resolve()
		if err != nil {
			return nil, err
		}
		tc := NewTokenCache(ClientCredentials{TokenURL: k.OAuthTokenURL, ClientID: k.OAuthClientID, ClientSecret: secret, Scopes: k.OAuthScopes})
		return oauth.Oauth(func(ctx context.Context) (oauth.Auth, error) {
			tok, err := tc.Token(ctx)
			if err != nil {
				return oauth.Auth{}, fmt.Errorf("kafka OAUTHBEARER: %w", err)
			}
			return oauth.Auth{Token: tok}, nil
		}), nil
	default:
		return nil, nil
	}
}

// validHostPort reports whether addr is host:port with a numeric port from
// 1 to 65535, what a dial needs (the host may be empty: this system).
func validHostPort(addr string) bool {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	n, err := strconv.ParseUint(port, 10, 16)
	return err == nil && n > 0
}
