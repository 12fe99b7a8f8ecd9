package testfixture

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestClusterProfileScript checks the cluster profile's command line
// without starting anything: env prints the addresses from the overridable
// ports, and mistakes name the input and what is allowed.
func TestClusterProfileScript(t *testing.T) {
	script := filepath.Join(ModuleRoot(t), "deploy", "local", "services.sh")
	run := func(env []string, args ...string) (string, error) {
		cmd := exec.Command(script, args...)
		// The cases set the ports they need: a cluster profile's own
		// settings in the environment (ORDERSTREAM_CLUSTER_*) must not leak in.
		for _, kv := range os.Environ() {
			if !strings.HasPrefix(kv, "ORDERSTREAM_CLUSTER_") {
				cmd.Env = append(cmd.Env, kv)
			}
		}
		cmd.Env = append(cmd.Env, env...)
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	tests := []struct {
		name    string
		env     []string
		args    []string
		want    []string
		wantErr bool
	}{
		{name: "defaults", args: []string{"env", "--cluster"}, want: []string{
			"export ORDERSTREAM_KAFKA_BROKERS=127.0.0.1:59401,127.0.0.1:59402,127.0.0.1:59403",
			"export ORDERSTREAM_CLICKHOUSE_ADDR=127.0.0.1:59421,127.0.0.1:59422,127.0.0.1:59423,127.0.0.1:59424",
			"export ORDERSTREAM_CLICKHOUSE_CLUSTER=orderstream",
			"export ORDERSTREAM_SEARCH_URL=http://127.0.0.1:59441,http://127.0.0.1:59442,http://127.0.0.1:59443",
		}},
		{name: "ports overridden", env: []string{
			"ORDERSTREAM_CLUSTER_KAFKA_PORTS=61401,61402,61403",
			"ORDERSTREAM_CLUSTER_CLICKHOUSE_PORTS=61421,61422,61423,61424",
			"ORDERSTREAM_CLUSTER_SEARCH_PORTS=61441,61442,61443",
			"ORDERSTREAM_CLUSTER_DIR=/tmp/elsewhere",
		}, args: []string{"env", "--cluster"}, want: []string{
			"export ORDERSTREAM_KAFKA_BROKERS=127.0.0.1:61401,127.0.0.1:61402,127.0.0.1:61403",
			"export ORDERSTREAM_CLICKHOUSE_ADDR=127.0.0.1:61421,127.0.0.1:61422,127.0.0.1:61423,127.0.0.1:61424",
			"export ORDERSTREAM_SEARCH_URL=http://127.0.0.1:61441,http://127.0.0.1:61442,http://127.0.0.1:61443",
			"export ORDERSTREAM_CLUSTER_DIR=/tmp/elsewhere",
		}},
		{name: "wrong number of ports", env: []string{"ORDERSTREAM_CLUSTER_KAFKA_PORTS=61401,61402"},
			args: []string{"env", "--cluster"}, want: []string{"ORDERSTREAM_CLUSTER_KAFKA_PORTS", "need 3 ports"}, wantErr: true},
		{name: "two search nodes", env: []string{"ORDERSTREAM_CLUSTER_SEARCH_PORTS=61441,61442"},
			args: []string{"env", "--cluster"}, want: []string{"ORDERSTREAM_CLUSTER_SEARCH_PORTS", "need 3 ports", "opensearch-1,-2,-3"}, wantErr: true},
		{name: "not a port list", env: []string{"ORDERSTREAM_CLUSTER_ZOOKEEPER_PORT=zk"},
			args: []string{"env", "--cluster"}, want: []string{"ORDERSTREAM_CLUSTER_ZOOKEEPER_PORT='zk'"}, wantErr: true},
		{name: "unknown node", args: []string{"kill", "--cluster", "kafka-4"},
			want: []string{"unknown cluster node 'kafka-4'", "kafka-1 kafka-2 kafka-3"}, wantErr: true},
		{name: "unknown search node", args: []string{"stop", "--cluster", "opensearch-4"},
			want: []string{"unknown cluster node 'opensearch-4'", "opensearch-1 opensearch-2 opensearch-3"}, wantErr: true},
		{name: "kill needs a node", args: []string{"kill", "--cluster"}, want: []string{"needs a node or group"}, wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, err := run(tc.env, tc.args...)
			if (err != nil) != tc.wantErr {
				t.Fatalf("services.sh %v: err %v, wantErr %v\n%s", tc.args, err, tc.wantErr, out)
			}
			for _, w := range tc.want {
				if !strings.Contains(out, w) {
					t.Errorf("services.sh %v: output lacks %q:\n%s", tc.args, w, out)
				}
			}
		})
	}
}
