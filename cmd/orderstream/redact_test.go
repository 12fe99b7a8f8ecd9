package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/orderstream/orderstream/internal/connect"
	"github.com/orderstream/orderstream/internal/testenv"
	"github.com/twmb/franz-go/pkg/kfake"
)

// envMainArgs makes the test binary run main with these arguments (JSON),
// so a test can run the real command in a process of its own and capture
// everything it prints: logs, results and errors.
const envMainArgs = "ORDERSTREAM_TEST_MAIN_ARGS"

func TestMain(m *testing.M) {
	if raw := os.Getenv(envMainArgs); raw != "" {
		var args []string
		if err := json.Unmarshal([]byte(raw), &args); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(3)
		}
		os.Args = append([]string{"orderstream"}, args...)
		main()
		return
	}
	os.Exit(m.Run())
}

// runMain runs the binary's main with args and env in a process of its own
// and returns everything it wrote to stdout and stderr, and its exit code.
func runMain(t *testing.T, env []string, args ...string) (string, int) {
	t.Helper()
	raw, err := json.Marshal(args)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0])
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "ORDERSTREAM_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(append(cmd.Env, envMainArgs+"="+string(raw)), env...)
	out, err := cmd.CombinedOutput()
	if ctx.Err() != nil {
		t.Fatalf("orderstream %s: did not end within 90 s; output:\n%s", strings.Join(args, " "), out)
	}
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return string(out), code
}

// TestNoSecretInOutput runs commands with every kind of secret set — as
// flags, as ORDERSTREAM_* variables, in files, inside URLs — against
// services that refuse or cannot be reached, with debug logging, and
// asserts that no secret appears in anything they print (logs, results,
// errors), while the errors still name what to fix.
func TestNoSecretInOutput(t *testing.T) {
	chAddr := testenv.ClickHouseAddr(t)
	const (
		kafkaPW  = "kafka-pw-Zq81x"
		oauthSec = "oauth-sec-Lm42y"
		chPW     = "ch-pw-Tr93w"
		searchPW = "search-pw-Bv17q"
		apiKey   = "api-key-Hj55k"
		pgPW     = "pg-pw-Nx60e"
	)
	secrets := []string{kafkaPW, oauthSec, chPW, searchPW, apiKey, pgPW}
	dir := t.TempDir()
	file := func(name, v string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(v+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	oauthFile, pgFile, keyFile := file("oauth", oauthSec), file("pg", pgPW), file("key", apiKey)

	kafka, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.EnableSASL(), kfake.Superuser(connect.SASLScramSHA512, "orderstream", kafkaPW))
	if err != nil {
		t.Fatal(err)
	}
	defer kafka.Close()
	brokers := strings.Join(kafka.ListenAddrs(), ",")
	tokens := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusUnauthorized)
		fmt.Fprint(w, `{"error":"invalid_client"}`)
	}))
	defer tokens.Close()

	allEnv := []string{
		"ORDERSTREAM_KAFKA_BROKERS=" + brokers,
		"ORDERSTREAM_KAFKA_SASL_MECHANISM=SCRAM-SHA-512", "ORDERSTREAM_KAFKA_SASL_USER=orderstream", "ORDERSTREAM_KAFKA_SASL_PASSWORD=" + kafkaPW,
		"ORDERSTREAM_CLICKHOUSE_ADDR=" + chAddr, "ORDERSTREAM_CLICKHOUSE_PASSWORD=" + chPW,
		"ORDERSTREAM_SEARCH_URL=http://elastic:" + searchPW + "@127.0.0.1:1",
		"ORDERSTREAM_PG_URL=postgres://orderstream:" + pgPW + "@127.0.0.1:1/orderstream?sslmode=disable",
	}
	tests := []struct {
		name     string
		env      []string
		args     []string
		wantCode int
		want     []string // in the output
	}{
		{"docs config", allEnv, []string{"docs", "config"}, 0, []string{"--kafka-sasl-password-file"}},
		{"kafka SCRAM works", allEnv, []string{"--log-level", "debug", "topic", "create", "--topic", "redact", "--partitions", "1"}, 0, []string{"topic redact created"}},
		// kfake has no OAUTHBEARER: the broker refuses the mechanism
		// (TestTokenCacheErrorNamesEndpointNotSecret covers a refusing
		// token endpoint).
		{"kafka OAUTHBEARER not offered by the broker", append(allEnv, "ORDERSTREAM_KAFKA_SASL_MECHANISM=OAUTHBEARER",
			"ORDERSTREAM_KAFKA_OAUTH_TOKEN_URL="+tokens.URL, "ORDERSTREAM_KAFKA_OAUTH_CLIENT_ID=orderstream", "ORDERSTREAM_KAFKA_OAUTH_CLIENT_SECRET_FILE="+oauthFile),
			[]string{"--log-level", "debug", "topic", "create", "--topic", "redact2", "--kafka-sasl-password", ""}, 1, []string{"UNSUPPORTED_SASL_MECHANISM", "check --kafka-sasl-mechanism"}},
		{"kafka password given twice", allEnv, []string{"topic", "create", "--kafka-sasl-password-file", oauthFile}, 2, []string{"--kafka-sasl-password and --kafka-sasl-password-file are both set"}},
		{"clickhouse refuses the password", allEnv, []string{"--log-level", "debug", "analytics", "summary"}, 1, []string{"--clickhouse-password(-file)"}},
		{"status with every secret set", allEnv, []string{"--log-level", "debug", "status", "--timeout", "5s", "--format", "json"}, 1, []string{"Wrong password", "127.0.0.1:1"}},
		{"search unreachable, password in the URL", allEnv, []string{"--log-level", "debug", "search", "x"}, 1, []string{"127.0.0.1:1"}},
		{"search URL malformed", allEnv, []string{"search", "x", "--search-url", "http://elastic:" + searchPW + "@h:bad"}, 2, []string{"--search-url http://elastic:xxxxx@h:bad"}},
		{"search API key from a file", allEnv, []string{"search", "x", "--search-url", "http://127.0.0.1:1", "--search-api-key-file", keyFile}, 1, []string{"127.0.0.1:1"}},
		{"postgres unreachable", allEnv, []string{"--log-level", "debug", "migrate"}, 1, []string{"127.0.0.1"}},
		{"postgres URL malformed", allEnv, []string{"migrate", "--pg-url", "postgres://u:" + pgPW + "@h:bad/db"}, 2, []string{"--pg-url"}},
		{"postgres URL with a bad escape", allEnv, []string{"migrate", "--pg-url", "postgres://u:" + pgPW + "@h/db%zz"}, 2, []string{"--pg-url"}},
		{"postgres password file", allEnv, []string{"migrate", "--pg-url", "postgres://u@127.0.0.1:1/db", "--pg-password-file", pgFile}, 1, []string{"127.0.0.1"}},
		{"bad setting value in the environment", append(allEnv, "ORDERSTREAM_KAFKA_TLS="+kafkaPW), []string{"docs", "config"}, 2, []string{"ORDERSTREAM_KAFKA_TLS: not a valid kafka-tls value (want bool)"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, code := runMain(t, tt.env, tt.args...)
			for _, s := range secrets {
				if strings.Contains(out, s) {
					t.Errorf("output shows secret %q:\n%s", s, out)
				}
			}
			if code != tt.wantCode {
				t.Errorf("exit %d, want %d; output:\n%s", code, tt.wantCode, out)
			}
			for _, w := range tt.want {
				if !strings.Contains(out, w) {
					t.Errorf("output does not say %q:\n%s", w, out)
				}
			}
		})
	}
}
