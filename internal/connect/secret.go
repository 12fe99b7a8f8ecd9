package connect

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
)

// Redacted is what a Secret prints instead of its value.
const Redacted = "[redacted]"

// Secret is a credential (password, API key, client secret). Its value is
// reachable only through Reveal; String, GoString, every fmt verb,
// MarshalJSON, MarshalText and LogValue give Redacted (or "" for an empty
// secret, so that "unset" stays visible). *Secret is a pflag.Value, so a
// flag holding one prints redacted in help and `docs config`. The zero value
// is the empty secret.
type Secret struct{ v string }

// NewSecret wraps s.
func NewSecret(s string) Secret { return Secret{v: s} }

// Reveal returns the value, for the one call that hands it to a client.
func (s Secret) Reveal() string { return s.v }

// IsZero reports whether the secret is empty.
func (s Secret) IsZero() bool { return s.v == "" }

// String returns Redacted, or "" when the secret is empty.
func (s Secret) String() string {
	if s.v == "" {
		return ""
	}
	return Redacted
}

// GoString is String (for %#v).
func (s Secret) GoString() string { return s.String() }

// Format prints String for every verb.
func (s Secret) Format(f fmt.State, _ rune) { _, _ = io.WriteString(f, s.String()) }

// MarshalJSON encodes String.
func (s Secret) MarshalJSON() ([]byte, error) { return json.Marshal(s.String()) }

// MarshalText encodes String (YAML, TOML, encoding/xml …).
func (s Secret) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// LogValue makes slog print String.
func (s Secret) LogValue() slog.Value { return slog.StringValue(s.String()) }

// Set sets the value (pflag.Value).
func (s *Secret) Set(v string) error { s.v = v; return nil }

// Type names the flag's value type in help (pflag.Value).
func (s *Secret) Type() string { return "secret" }

// secretSetting is a secret given either as a value (flag valueFlag) or in
// a file (flag fileFlag); never both.
type secretSetting struct {
	value     Secret
	file      string
	valueFlag string
	fileFlag  string
}

// check reports giving both, and a file that cannot be read, naming the
// flags and the path (never the value).
func (s secretSetting) check() error {
	_, err := s.resolve()
	return err
}

// resolve returns the secret: the value, or the file's content without its
// trailing newline. An empty file is an error: a mounted Secret that is
// empty is a mistake, not "no password".
func (s secretSetting) resolve() (Secret, error) {
	if s.file == "" {
		return s.value, nil
	}
	if !s.value.IsZero() {
		return Secret{}, fmt.Errorf("--%s and --%s are both set: give the secret one way", s.valueFlag, s.fileFlag)
	}
	b, err := os.ReadFile(s.file)
	if err != nil {
		var pe *os.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return Secret{}, fmt.Errorf("--%s %s: cannot read it: %w", s.fileFlag, s.file, err)
	}
	v := strings.TrimRight(string(b), "\r\n")
	if v == "" {
		return Secret{}, fmt.Errorf("--%s %s: the file is empty", s.fileFlag, s.file)
	}
	return NewSecret(v), nil
}
