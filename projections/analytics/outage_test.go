package analytics_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/orderstream/orderstream/internal/testenv"
	"github.com/orderstream/orderstream/internal/testfixture"
	"github.com/orderstream/orderstream/projections/analytics"
)

// EnvOutageTest opts in to TestClickHouseOutage, which stops the shared
// ClickHouse server for 30 s: run it alone, never beside other tests that use
// ClickHouse:
//
//	ORDERSTREAM_TEST_OUTAGE=1 go test -count=1 -run TestClickHouseOutage ./projections/analytics/
const EnvOutageTest = "ORDERSTREAM_TEST_OUTAGE"

func services(t testing.TB, args ...string) {
	t.Helper()
	script := filepath.Join(testfixture.ModuleRoot(t), "deploy", "local", "services.sh")
	out, err := exec.Command(script, args...).CombinedOutput()
	if err != nil {
		t.Errorf("services.sh %v: %v\n%s", args, err, out)
	}
}

// TestClickHouseOutage stops ClickHouse for 30 s while the daemon is in the
// middle of the topic, starts it again and checks that the daemon recovers
// by itself (no restart) and that the totals are exact.
func TestClickHouseOutage(t *testing.T) {
	if os.Getenv(EnvOutageTest) != "1" {
		t.Skipf("stops the shared ClickHouse server: set %s=1 and run this test alone", EnvOutageTest)
	}
	events := testfixture.RealEvents(t)[:20000]
	net, lines, orders := expectedOf(t, events)
	brokers := testenv.KafkaBrokers(t)
	cfg := testConfig(t)
	topic := testfixture.ProduceTopic(t, brokers, events)
	adm := admin(t, brokers)
	deleteTopicAtCleanup(t, adm, topic+".dlq")
	group := testenv.Name("analytics")
	q, _ := newQueries(t, cfg)

	ccfg := consumerConfig(brokers, topic, group)
	ccfg.BatchMaxRecords = 300
	d := startDaemon(t, ccfg, newSink(t, cfg))

	// Wait for the first rows, then pull the server away mid-stream.
	deadline := time.Now().Add(3 * time.Minute)
	var partial analytics.Totals
	for {
		got, err := q.Summary(context.Background(), analytics.Filter{})
		if err == nil && got.Lines > 0 {
			partial = got
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no rows within 3 minutes: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Cleanup(func() { services(t, "start", "clickhouse") }) // even on failure
	services(t, "stop", "clickhouse")
	if partial.Lines >= lines {
		t.Fatalf("the daemon finished before the outage (%d lines): nothing tested", partial.Lines)
	}
	t.Logf("ClickHouse stopped after %d of %d lines; down for 30 s", partial.Lines, lines)
	time.Sleep(30 * time.Second) // the outage itself
	services(t, "start", "clickhouse")

	testfixture.WaitDrained(t, adm, group, topic, 5*time.Minute)
	if err := d.stop(); err != nil {
		t.Fatalf("Run: %v", err)
	}
	checkSubset(t, q, net, lines, orders)
}
