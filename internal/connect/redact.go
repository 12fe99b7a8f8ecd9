package connect

import (
	"regexp"
	"strings"
)

// redactedPassword replaces a password inside a printed URL or DSN.
const redactedPassword = "xxxxx"

// secretParam matches a key=value pair whose value is a secret, in a URL's
// query (password=…&) and in a libpq keyword/value string (password='…').
var secretParam = regexp.MustCompile(`(?i)\b((?:ssl)?password|api_?key|token|secret|client_secret)(\s*=\s*)('(?:[^'\\]|\\.)*'|[^&\s#]*)`)

// RedactURL returns raw, a URL or a libpq keyword/value string, with its
// password (user info, and password-like query or keyword values) replaced
// by "xxxxx". It works on text, without parsing, so a malformed URL is
// redacted too; it is the one function through which orderstream prints a
// URL that may carry credentials (--pg-url, --search-url).
func RedactURL(raw string) string {
	out := raw
	if lo, hi, ok := passwordSpan(raw); ok {
		out = raw[:lo] + redactedPassword + raw[hi:]
	}
	return secretParam.ReplaceAllString(out, "${1}${2}"+redactedPassword)
}

// passwordSpan finds the password of a URL's user info: raw[lo:hi]. The
// user info ends at the last '@' of the authority; a password may itself
// hold '/', '?' or '#' in a malformed URL, so the '@' is looked for before
// the query first, then anywhere.
func passwordSpan(raw string) (lo, hi int, ok bool) {
	i := strings.Index(raw, "://")
	if i < 0 {
		return 0, 0, false
	}
	base := i + 3
	rest := raw[base:]
	end := len(rest)
	if q := strings.IndexAny(rest, "?#"); q >= 0 {
		end = q
	}
	at := strings.LastIndex(rest[:end], "@")
	if at < 0 {
		at = strings.LastIndex(rest, "@")
	}
	if at < 0 {
		return 0, 0, false
	}
	c := strings.Index(rest[:at], ":")
	if c < 0 {
		return 0, 0, false
	}
	return base + c + 1, base + at, true
}

// scrub removes every occurrence of the secrets from s (values shorter than
// 3 bytes are left: they would blank out ordinary text and guess nothing).
func scrub(s string, secrets ...string) string {
	for _, v := range secrets {
		if len(v) >= 3 {
			s = strings.ReplaceAll(s, v, redactedPassword)
		}
	}
	return s
}

// redactedError is an error whose text was scrubbed of secrets. It keeps no
// reference to the original error, so nothing can print that by unwrapping.
type redactedError struct{ msg string }

func (e *redactedError) Error() string { return e.msg }

// passwordOf returns the password in raw's user info or password keyword,
// as RedactURL finds it, so that error texts quoting raw in any form can be
// scrubbed of it.
func passwordOf(raw string) []string {
	var out []string
	if lo, hi, ok := passwordSpan(raw); ok {
		out = append(out, raw[lo:hi])
	}
	for _, m := range secretParam.FindAllStringSubmatch(raw, -1) {
		out = append(out, strings.Trim(m[3], "'"))
	}
	return out
}
