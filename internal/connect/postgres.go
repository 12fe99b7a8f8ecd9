package connect

import (
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"
)

// Postgres is how orderstream reaches PostgreSQL: a connection string as
// libpq reads it (URL or keyword/value; sslmode=verify-full, sslrootcert,
// sslcert, sslkey, passfile and the PG* environment are honoured by pgx)
// and, optionally, the password in a file of its own. Flags --pg-url and
// --pg-password-file.
type Postgres struct {
	URL          string
	PasswordFile string
}

func (p Postgres) password() secretSetting {
	return secretSetting{file: p.PasswordFile, fileFlag: "pg-password-file", valueFlag: "pg-url"}
}

// Validate checks that the connection string parses (without echoing its
// password, even when it is malformed) and that the password file reads.
func (p Postgres) Validate() error {
	_, err := p.ConnString()
	return err
}

// ConnString returns the connection string for pgx: URL with the password
// of PasswordFile when one is given. The result holds the password: print
// it only through RedactURL. Errors name --pg-url (redacted) or
// --pg-password-file.
func (p Postgres) ConnString() (string, error) {
	if p.URL == "" {
		return "", errors.New("--pg-url is empty")
	}
	pw, err := p.password().resolve()
	if err != nil {
		return "", err
	}
	conn := p.URL
	if !pw.IsZero() {
		if conn, err = withPassword(p.URL, pw.Reveal()); err != nil {
			return "", err
		}
		if hasPassword(p.URL) {
			return "", fmt.Errorf("--pg-url %s holds a password and --pg-password-file is set: give the secret one way", RedactURL(p.URL))
		}
	}
	if _, err := pgconn.ParseConfig(conn); err != nil {
		secrets := append(passwordOf(p.URL), pw.Reveal())
		return "", &redactedError{msg: "--pg-url: " + scrub(err.Error(), secrets...)}
	}
	return conn, nil
}

// pgPasswordParam finds libpq's password keyword (not sslpassword) in a
// keyword/value string or a URL's query.
var pgPasswordParam = regexp.MustCompile(`(?:^|[\s?&])password\s*=`)

// hasPassword reports whether conn, a URL or a keyword/value string, holds
// a login password (user info or the password keyword).
func hasPassword(conn string) bool {
	if lo, hi, ok := passwordSpan(conn); ok && hi > lo {
		return true
	}
	return pgPasswordParam.MatchString(conn)
}

// withPassword puts pw into conn, a URL or a keyword/value string.
func withPassword(conn, pw string) (string, error) {
	if strings.HasPrefix(conn, "postgres://") || strings.HasPrefix(conn, "postgresql://") {
		u, err := url.Parse(conn)
		if err != nil {
			var ue *url.Error
			if errors.As(err, &ue) {
				err = ue.Err
			}
			return "", &redactedError{msg: fmt.Sprintf("--pg-url %s: not a valid URL: %s", RedactURL(conn), scrub(err.Error(), passwordOf(conn)...))}
		}
		user := ""
		if u.User != nil {
			user = u.User.Username()
		}
		u.User = url.UserPassword(user, pw)
		return u.String(), nil
	}
	esc := strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(pw)
	return conn + " password='" + esc + "'", nil
}
