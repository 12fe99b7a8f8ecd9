package testfixture

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kadm"
)

// EnvClusterTest opts in to the tests on the cluster profile of the local
// services (`deploy/local/services.sh up --cluster`), which kill and restart
// its nodes: `make test-cluster` sets it, after the plain suite.
const EnvClusterTest = "ORDERSTREAM_TEST_CLUSTER"

// Cluster is where the cluster profile listens, read from the environment
// that `deploy/local/services.sh env --cluster` prints.
type Cluster struct {
	KafkaBrokers      []string // ORDERSTREAM_KAFKA_BROKERS: the three brokers
	ClickHouseAddr    string   // ORDERSTREAM_CLICKHOUSE_ADDR: the four servers, comma-separated
	ClickHouseCluster string   // ORDERSTREAM_CLICKHOUSE_CLUSTER: the remote_servers name
	SearchURL         string   // ORDERSTREAM_SEARCH_URL: the three search nodes, comma-separated
	root              string
}

// ClusterProfile returns the cluster profile's addresses. It skips the test
// unless ORDERSTREAM_TEST_CLUSTER=1, and fails it when that is set but the
// cluster's environment is not.
func ClusterProfile(t testing.TB) Cluster {
	t.Helper()
	if os.Getenv(EnvClusterTest) != "1" {
		t.Skipf("runs on the cluster profile and kills its nodes: set %s=1 with the environment of `deploy/local/services.sh env --cluster` (make test-cluster)", EnvClusterTest)
	}
	c := Cluster{
		ClickHouseAddr:    os.Getenv("ORDERSTREAM_CLICKHOUSE_ADDR"),
		ClickHouseCluster: os.Getenv("ORDERSTREAM_CLICKHOUSE_CLUSTER"),
		SearchURL:         os.Getenv("ORDERSTREAM_SEARCH_URL"),
		root:              ModuleRoot(t),
	}
	if b := os.Getenv("ORDERSTREAM_KAFKA_BROKERS"); b != "" {
		c.KafkaBrokers = strings.Split(b, ",")
	}
	if c.ClickHouseCluster == "" || len(c.KafkaBrokers) < 3 || !strings.Contains(c.ClickHouseAddr, ",") || c.SearchURL == "" {
		t.Fatalf("%s=1 but the cluster's environment is not set (brokers %v, clickhouse %q cluster %q, search %q): eval \"$(deploy/local/services.sh env --cluster)\"",
			EnvClusterTest, c.KafkaBrokers, c.ClickHouseAddr, c.ClickHouseCluster, c.SearchURL)
	}
	return c
}

// Node runs `services.sh ACTION --cluster NODE...` (kill, stop, start, up;
// NODE e.g. kafka-2, clickhouse-s2r1, opensearch-1, or a group: kafka)
// and fails the test, with the script's output, when it fails.
func (c Cluster) Node(t testing.TB, action string, nodes ...string) {
	t.Helper()
	out, err := c.Script(action, nodes...)
	if err != nil {
		t.Fatal(err)
	}
	t.Log(out)
}

// Script runs `services.sh ACTION --cluster NODE...` and returns what it
// printed, prefixed by the command; the error names the command and holds
// that output. Unlike Node it may run on any goroutine (`start` waits until
// the node is healthy, up to about a minute for a broker).
func (c Cluster) Script(action string, nodes ...string) (string, error) {
	args := append([]string{action, "--cluster"}, nodes...)
	out, err := exec.Command(filepath.Join(c.root, "deploy", "local", "services.sh"), args...).CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("services.sh %s: %w\n%s", strings.Join(args, " "), err, out)
	}
	return fmt.Sprintf("services.sh %s: %s", strings.Join(args, " "), strings.TrimSpace(string(out))), nil
}

// LeaderOfMost returns the node name ("kafka-N") of the broker leading
// most partitions of topic: the one whose loss moves most leaderships.
func (c Cluster) LeaderOfMost(t testing.TB, adm *kadm.Client, topic string) string {
	t.Helper()
	details, err := adm.ListTopics(context.Background(), topic)
	if err != nil {
		t.Fatalf("describe topic %s: %v", topic, err)
	}
	led := map[int32]int{}
	for _, p := range details[topic].Partitions {
		led[p.Leader]++
	}
	var best int32
	for id, n := range led {
		if n > led[best] {
			best = id
		}
	}
	t.Logf("partition leaders of %s (broker: partitions): %v", topic, led)
	return fmt.Sprintf("kafka-%d", best)
}
