package testenv

import (
	"context"
	"fmt"
	"net"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/testcontainers/testcontainers-go"
	"github.com/testcontainers/testcontainers-go/wait"
)

var (
	dockerOnce sync.Once
	dockerOK   bool
)

// dockerAvailable reports whether a Docker engine answers a ping.
func dockerAvailable() bool {
	dockerOnce.Do(func() {
		if os.Getenv("DOCKER_HOST") == "" {
			if _, err := os.Stat("/var/run/docker.sock"); err != nil {
				return
			}
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		p, err := testcontainers.NewDockerProvider()
		if err != nil {
			return
		}
		defer p.Close()
		dockerOK = p.Health(ctx) == nil
	})
	return dockerOK
}

type started struct {
	once sync.Once
	addr string
	err  error
}

var containers sync.Map // image -> *started

// startOnce starts req once per test binary and returns fn(host, port).
// The container lives until the test binary exits (Ryuk reaps it).
func startOnce(t testing.TB, req testcontainers.ContainerRequest, port string, fn func(host, port string) string) (string, error) {
	v, _ := containers.LoadOrStore(req.Image, &started{})
	s := v.(*started)
	s.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		c, err := testcontainers.GenericContainer(ctx, testcontainers.GenericContainerRequest{ContainerRequest: req, Started: true})
		if err != nil {
			s.err = fmt.Errorf("start %s: %w", req.Image, err)
			return
		}
		host, err := c.Host(ctx)
		if err != nil {
			s.err = err
			return
		}
		p, err := c.MappedPort(ctx, port)
		if err != nil {
			s.err = err
			return
		}
		s.addr = fn(host, p.Port())
	})
	return s.addr, s.err
}

func postgresContainer(t testing.TB) (string, error) {
	return startOnce(t, testcontainers.ContainerRequest{
		Image:        "postgres:15",
		Env:          map[string]string{"POSTGRES_USER": "orderstream", "POSTGRES_PASSWORD": "orderstream", "POSTGRES_DB": "orderstream"},
		Cmd:          []string{"postgres", "-c", "wal_level=logical", "-c", "max_replication_slots=20", "-c", "max_wal_senders=20"},
		ExposedPorts: []string{"5432/tcp"},
		WaitingFor:   wait.ForLog("database system is ready to accept connections").WithOccurrence(2).WithStartupTimeout(2 * time.Minute),
	}, "5432/tcp", func(h, p string) string {
		return fmt.Sprintf("postgres://orderstream:orderstream@%s/orderstream?sslmode=disable", net.JoinHostPort(h, p))
	})
}

func kafkaContainer(t testing.TB) (string, error) {
	// apache/kafka advertises the listener given here; a fixed host port keeps
	// the advertised address equal to the mapped one.
	const hostPort = "39092"
	return startOnce(t, testcontainers.ContainerRequest{
		Image:        "apache/kafka:4.1.1",
		ExposedPorts: []string{hostPort + ":9092/tcp"},
		Env: map[string]string{
			"KAFKA_NODE_ID":                                  "1",
			"KAFKA_PROCESS_ROLES":                            "broker,controller",
			"KAFKA_LISTENERS":                                "PLAINTEXT://:9092,CONTROLLER://:9093",
			"KAFKA_ADVERTISED_LISTENERS":                     "PLAINTEXT://localhost:" + hostPort,
			"KAFKA_CONTROLLER_LISTENER_NAMES":                "CONTROLLER",
			"KAFKA_CONTROLLER_QUORUM_VOTERS":                 "1@localhost:9093",
			"KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR":         "1",
			"KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR": "1",
			"KAFKA_TRANSACTION_STATE_LOG_MIN_ISR":            "1",
			"KAFKA_GROUP_INITIAL_REBALANCE_DELAY_MS":         "0",
			"KAFKA_AUTO_CREATE_TOPICS_ENABLE":                "false",
		},
		WaitingFor: wait.ForListeningPort("9092/tcp").WithStartupTimeout(2 * time.Minute),
	}, "9092/tcp", func(h, p string) string { return net.JoinHostPort(h, p) })
}

func clickhouseContainer(t testing.TB) (string, error) {
	return startOnce(t, testcontainers.ContainerRequest{
		Image:        "clickhouse/clickhouse-server:25.8",
		ExposedPorts: []string{"9000/tcp"},
		Env:          map[string]string{"CLICKHOUSE_SKIP_USER_SETUP": "1"},
		WaitingFor:   wait.ForListeningPort("9000/tcp").WithStartupTimeout(2 * time.Minute),
	}, "9000/tcp", func(h, p string) string { return net.JoinHostPort(h, p) })
}

func searchContainer(t testing.TB) (string, error) {
	return startOnce(t, testcontainers.ContainerRequest{
		Image:        "docker.elastic.co/elasticsearch/elasticsearch:8.19.7",
		ExposedPorts: []string{"9200/tcp"},
		Env:          map[string]string{"discovery.type": "single-node", "xpack.security.enabled": "false", "ES_JAVA_OPTS": "-Xms1g -Xmx1g"},
		WaitingFor:   wait.ForHTTP("/_cluster/health").WithPort("9200/tcp").WithStartupTimeout(3 * time.Minute),
	}, "9200/tcp", func(h, p string) string { return "http://" + net.JoinHostPort(h, p) })
}
