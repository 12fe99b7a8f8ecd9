package connect

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Search is how orderstream reaches Elasticsearch or OpenSearch.
// Flags --search-url, --search-user, --search-password(-file),
// --search-api-key(-file), --search-cloud-id, --search-tls-*-file.
type Search struct {
	// URL is the engine's base URL, http:// or https://. User info in it
	// is accepted (and moved to User/Password) but never printed.
	URL          string
	User         string
	Password     Secret
	PasswordFile string
	// APIKey is sent as "Authorization: ApiKey <key>" (the base64 form
	// Elasticsearch hands out).
	APIKey     Secret
	APIKeyFile string
	// CloudID locates an Elastic Cloud deployment (Elasticsearch only);
	// it replaces URL.
	CloudID string
	// TLS for https URLs: CA, client certificate (no on/off: the scheme
	// decides).
	TLS TLS
}

func (s Search) password() secretSetting {
	return secretSetting{value: s.Password, file: s.PasswordFile, valueFlag: "search-password", fileFlag: "search-password-file"}
}

func (s Search) apiKey() secretSetting {
	return secretSetting{value: s.APIKey, file: s.APIKeyFile, valueFlag: "search-api-key", fileFlag: "search-api-key-file"}
}

// Validate reports every problem of s at once, never echoing a password.
func (s Search) Validate() error {
	var errs []error
	if s.CloudID == "" && s.URL == "" {
		errs = append(errs, errors.New("--search-url is empty"))
	}
	for _, raw := range s.urls() {
		u, err := url.Parse(raw)
		switch {
		case err != nil:
			errs = append(errs, fmt.Errorf("--search-url %s: not a URL", RedactURL(raw)))
		case u.Scheme != "http" && u.Scheme != "https" || u.Host == "":
			errs = append(errs, fmt.Errorf("--search-url %s: want http://host:port or https://host:port", RedactURL(raw)))
		case u.Scheme == "http" && s.TLS.On():
			errs = append(errs, fmt.Errorf("--search-url %s is http:// but --search-tls-* is set: use https://", RedactURL(raw)))
		}
	}
	pwErr, keyErr := s.password().check(), s.apiKey().check()
	errs = append(errs, pwErr, keyErr, s.TLS.validate("search"))
	if pwErr == nil && keyErr == nil && (!s.APIKey.IsZero() || s.APIKeyFile != "") && (s.User != "" || !s.Password.IsZero() || s.PasswordFile != "") {
		errs = append(errs, errors.New("--search-api-key(-file) and --search-user/--search-password(-file) are both set: use one way to authenticate"))
	}
	return errors.Join(errs...)
}

// urls returns the comma-separated node URLs of s.URL (several on a
// cluster), trimmed; none when it is empty.
func (s Search) urls() []string {
	if s.URL == "" {
		return nil
	}
	out := strings.Split(s.URL, ",")
	for i, u := range out {
		out[i] = strings.TrimSpace(u)
	}
	return out
}

// SearchConn is what the search engine clients need from s.
type SearchConn struct {
	URL       string // without user info, comma-separated on a cluster; safe to print
	User      string
	Password  string
	APIKey    string
	CloudID   string
	Transport http.RoundTripper // TLS settings applied; handshake failures are *HandshakeError
}

// Conn resolves s (secrets from files, certificates). log receives the
// WARN of an insecure-skip-verify (nil: none).
func (s Search) Conn(log *slog.Logger) (SearchConn, error) {
	if err := s.Validate(); err != nil {
		return SearchConn{}, err
	}
	pw, err := s.password().resolve()
	if err != nil {
		return SearchConn{}, err
	}
	key, err := s.apiKey().resolve()
	if err != nil {
		return SearchConn{}, err
	}
	out := SearchConn{User: s.User, Password: pw.Reveal(), APIKey: key.Reveal(), CloudID: s.CloudID}
	urls := s.urls()
	for i, raw := range urls {
		if u, err := url.Parse(raw); err == nil && u.User != nil {
			if out.User == "" {
				out.User = u.User.Username()
			}
			if p, ok := u.User.Password(); ok && out.Password == "" {
				out.Password = p
			}
			u.User = nil
			raw = u.String()
		}
		urls[i] = strings.TrimRight(raw, "/")
	}
	out.URL = strings.Join(urls, ",")
	tr := http.DefaultTransport.(*http.Transport).Clone()
	cfg, err := s.TLS.load("search")
	if err != nil {
		return SearchConn{}, err
	}
	if cfg != nil {
		s.TLS.warnInsecure(log, "search", "search")
		d := &net.Dialer{Timeout: 10 * time.Second}
		tr.TLSClientConfig = cfg
		tr.DialTLSContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
			return dialTLS(ctx, d, network, addr, cfg, "search", "search")
		}
		// DialTLSContext's connections are not negotiated for HTTP/2.
		tr.ForceAttemptHTTP2 = false
	}
	out.Transport = tr
	return out, nil
}
