package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/orderstream/orderstream/consumers"
	"github.com/orderstream/orderstream/internal/testenv"
	"github.com/orderstream/orderstream/internal/testfixture"
	"github.com/orderstream/orderstream/projections/analytics"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// TestConsumeWatchesTopic: a projection daemon reports on /metrics, within
// --topic-check-interval, that its topic lost its first records
// (orderstream_consumer_topic_replayable 1 → 0), beside the Go runtime's
// metrics.
func TestConsumeWatchesTopic(t *testing.T) {
	brokers := testenv.KafkaBrokers(t)
	chAddr := testenv.ClickHouseAddr(t)
	topicName := testfixture.ProduceTopic(t, brokers, testfixture.RealEvents(t)[:20])
	db, group := testenv.Name("watch"), testenv.Name("watch")
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_ = consumers.DeleteGroup(ctx, adm, group)
		if conn, err := analytics.Open(analytics.Config{Addr: chAddr}); err == nil {
			_ = conn.Exec(ctx, "DROP DATABASE IF EXISTS `"+db+"`")
			_ = conn.Close()
		}
	})
	addr := freeAddr(t)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	root := newRootCmd()
	root.SetOut(io.Discard)
	root.SetArgs([]string{"consume", "analytics", "--topic", topicName, "--group", group, "--metrics-addr", addr,
		"--topic-check-interval", "200ms", "--kafka-brokers", strings.Join(brokers, ","),
		"--clickhouse-addr", chAddr, "--clickhouse-database", db, "--log-level", "error"})
	done := make(chan error, 1)
	go func() { done <- root.ExecuteContext(ctx) }()

	waitFor := func(want string) { t.Helper(); waitForMetric(t, addr, done, want) }
	waitFor(fmt.Sprintf(`orderstream_consumer_topic_replayable{topic=%q} 1`, topicName))
	waitFor(fmt.Sprintf(`go_info{version=%q} 1`, runtime.Version())) // the Go and process collectors

	ends, err := adm.ListEndOffsets(ctx, topicName)
	if err != nil {
		t.Fatal(err)
	}
	// Delete records only behind the group's commits: deleting what the
	// daemon has not consumed yet is lost history it must refuse (an
	// out-of-range offset stops it), not what this test watches for.
	deadline := time.Now().Add(time.Minute)
	for {
		committed, err := adm.FetchOffsets(ctx, group)
		caughtUp := err == nil
		ends.Each(func(lo kadm.ListedOffset) {
			if c, ok := committed.Lookup(topicName, lo.Partition); lo.Offset > 0 && (!ok || c.At < lo.Offset) {
				caughtUp = false
			}
		})
		if caughtUp {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("group %s did not commit the topic's end offsets within a minute (last error %v)", group, err)
		}
		select {
		case err := <-done:
			t.Fatalf("daemon ended before it caught up: %v", err)
		case <-time.After(50 * time.Millisecond):
		}
	}
	var o kadm.Offsets
	ends.Each(func(lo kadm.ListedOffset) {
		if lo.Offset > 0 && len(o) == 0 {
			o.Add(kadm.Offset{Topic: topicName, Partition: lo.Partition, At: 1})
		}
	})
	if resp, err := adm.DeleteRecords(ctx, o); err != nil || resp.Error() != nil {
		t.Fatalf("delete records: %v %v", err, resp.Error())
	}
	waitFor(fmt.Sprintf(`orderstream_consumer_topic_replayable{topic=%q} 0`, topicName))
	cancel()
	if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
		t.Fatalf("daemon: %v", err)
	}
}

// freeAddr returns a local address free a moment ago, for a daemon to
// listen on.
func freeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close() // the daemon listens on it
	return ln.Addr().String()
}

// waitForMetric polls the /metrics of addr until a line equals want (the
// line of want's metric and labels: up to the last space), failing after a
// minute or when the daemon ends (done).
func waitForMetric(t *testing.T, addr string, done <-chan error, want string) {
	t.Helper()
	prefix := want[:strings.LastIndex(want, " ")+1]
	metric := func() string {
		resp, err := http.Get("http://" + addr + "/metrics")
		if err != nil {
			return err.Error()
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		for _, line := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(line, prefix) {
				return line
			}
		}
		return "no " + prefix + "in /metrics"
	}
	deadline := time.Now().Add(time.Minute)
	for got := metric(); got != want; got = metric() {
		select {
		case err := <-done:
			t.Fatalf("daemon ended: %v", err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("metric = %q, want %q", got, want)
		}
		time.Sleep(100 * time.Millisecond) // polling a condition with a deadline
	}
}
