package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/cobra"
)

// configCmd runs bindConfig for the relay command on a YAML file holding
// body and returns the command and the error.
func configCmd(t *testing.T, body string) (*cobra.Command, error) {
	t.Helper()
	for _, k := range []string{"ORDERSTREAM_CONFIG", "ORDERSTREAM_CLICKHOUSE_PASSWORD", "ORDERSTREAM_TOPIC", "ORDERSTREAM_KAFKA_BROKERS", "ORDERSTREAM_CLICKHOUSE_USER"} {
		t.Setenv(k, "")
	}
	file := filepath.Join(t.TempDir(), "orderstream.yaml")
	if err := os.WriteFile(file, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	root := newRootCmd()
	cmd, _, err := root.Find([]string{"relay"})
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.ParseFlags(nil); err != nil { // merges the root's flags
		t.Fatal(err)
	}
	return cmd, bindConfig(cmd, file)
}

// TestConfigValuesAsWritten: a value in the YAML file reaches its setting
// as it is written in the file. Decoding it as a YAML number first turned
// a password "0123" into "83", "1e3" into "1000" and a long digit string
// into a float's rendering; an empty value became the text "<nil>".
func TestConfigValuesAsWritten(t *testing.T) {
	for _, tt := range []struct{ yaml, flag, want string }{
		{"clickhouse-password: 0123\n", "clickhouse-password", "0123"},
		{"clickhouse-password: 1e3\n", "clickhouse-password", "1e3"},
		{"clickhouse-password: 0x1F\n", "clickhouse-password", "0x1F"},
		{"clickhouse-password: 12345678901234567890123\n", "clickhouse-password", "12345678901234567890123"},
		{"clickhouse-user: 007\n", "clickhouse-user", "007"},
		{"topic: \"orders\"\n", "topic", "orders"},
		{"kafka-brokers: [\"a:1\", b:2]\n", "kafka-brokers", "[a:1,b:2]"},
		{"max-in-flight: 500\n", "max-in-flight", "500"},
		{"# comments only\n", "topic", "orders"},
		{"---\n", "topic", "orders"},
		{"", "topic", "orders"},
	} {
		cmd, err := configCmd(t, tt.yaml)
		if err != nil {
			t.Errorf("%q: %v", tt.yaml, err)
			continue
		}
		fl := cmd.Flags().Lookup(tt.flag)
		got := fl.Value.String()
		if s, ok := fl.Value.(interface{ Reveal() string }); ok {
			got = s.Reveal()
		}
		if got != tt.want {
			t.Errorf("%q: %s = %q, want %q", tt.yaml, tt.flag, got, tt.want)
		}
	}
}

// TestConfigBadValues: a value that is not one scalar (or, for a list
// setting, a list of scalars) is a usage error naming the key, never the
// Go rendering of a map or a nil set as the setting.
func TestConfigBadValues(t *testing.T) {
	for _, tt := range []struct{ yaml, want string }{
		{"topic:\n", "topic: no value"},
		{"topic: ~\n", "topic: no value"},
		{"topic: {a: b}\n", "topic: not a valid topic value"},
		{"topic: [a, b]\n", "topic: not a valid topic value"},
		{"kafka-brokers: [[a]]\n", "kafka-brokers: not a valid kafka-brokers value"},
		{"max-in-flight: ten\n", "max-in-flight: not a valid max-in-flight value"},
		{"topic: a\ntopic: b\n", "topic"},
		{"- topic\n", "not a YAML map"},
	} {
		_, err := configCmd(t, tt.yaml)
		if exitCode(err) != 2 || !strings.Contains(fmt.Sprint(err), tt.want) {
			t.Errorf("%q: exit %d, %v; want a usage error containing %q", tt.yaml, exitCode(err), err, tt.want)
		}
	}
}
