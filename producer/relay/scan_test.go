package relay

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/orderstream/orderstream/internal/testenv"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// produceForeign appends n records without a relay_position header (as a
// DLQ re-drive writes them) to partition p of topic; with txn they are
// written in one committed transaction, so the partition ends with a
// transaction marker.
func produceForeign(t *testing.T, brokers []string, topic string, p int32, n int, txn bool) {
	t.Helper()
	ctx := context.Background()
	opts := []kgo.Opt{kgo.SeedBrokers(brokers...), kgo.DefaultProduceTopic(topic), kgo.RecordPartitioner(kgo.ManualPartitioner())}
	if txn {
		opts = append(opts, kgo.TransactionalID(testenv.Name("foreign")))
	}
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if txn {
		if err := cl.BeginTransaction(); err != nil {
			t.Fatal(err)
		}
	}
	recs := make([]*kgo.Record, n)
	for i := range recs {
		recs[i] = &kgo.Record{Partition: p, Key: []byte(fmt.Sprintf("foreign-%d-%d", p, i)), Value: []byte(`{"redriven":true}`),
			Headers: []kgo.RecordHeader{{Key: "ce_id", Value: []byte(fmt.Sprintf("foreign-%d-%d", p, i))}}}
	}
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	if txn {
		if err := cl.EndTransaction(ctx, kgo.TryCommit); err != nil {
			t.Fatal(err)
		}
	}
}

// produceRelayed appends records with relay positions 0/<major>/1..n to
// partition p, as the relay writes them.
func produceRelayed(t *testing.T, cl *kgo.Client, topic string, p int32, major uint64, n int) {
	t.Helper()
	recs := make([]*kgo.Record, n)
	for i := range recs {
		pos := Position{Mode: ModeWAL, Major: major, Minor: uint64(i + 1)}
		recs[i] = &kgo.Record{Topic: topic, Partition: p, Key: []byte("order"), Value: []byte(`{}`),
			Headers: []kgo.RecordHeader{{Key: HeaderPosition, Value: []byte(pos.String())}}}
	}
	if err := cl.ProduceSync(context.Background(), recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
}

// TestLastPositionsScansBack: the start-up duplicate check finds the last
// record the relay wrote in each partition past records others appended
// (plain or transactional), within the bound, and logs what it found; a
// partition whose relay record lies beyond the bound gets a WARN and no
// check.
func TestLastPositionsScansBack(t *testing.T) {
	brokers := testenv.KafkaBrokers(t)
	ctx := context.Background()
	topic := testenv.Name("relay_scan")
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	if _, err := adm.CreateTopic(ctx, 7, 1, nil, topic); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _, _ = adm.DeleteTopics(context.Background(), topic) })
	waitTopicVisible(t, adm, topic)

	const bound = 1000
	tests := []struct {
		name      string
		partition int32
		relayed   int // relay records first
		foreign   int // then records of others
		txn       bool
		want      string // relay position found, "" for none
		wantLog   string // in a log line
		wantWarn  bool   // that line is a WARN
	}{
		{name: "last record is the relay's", partition: 0, relayed: 3, want: "0/A/3"},
		{name: "a few records of others after it", partition: 1, relayed: 2, foreign: 5, want: "0/B/2",
			wantLog: `"partition":1,"scanned":7,"offset":1,"position":"0/B/2","records_after":5`},
		{name: "three windows back", partition: 2, relayed: 1, foreign: 600, want: "0/C/1",
			wantLog: `"partition":2,"scanned":601,"offset":0`},
		{name: "beyond the bound", partition: 3, relayed: 1, foreign: 1200,
			wantLog: `"partition":3,"scanned":1000,"bound":1000,"end_offset":1201`, wantWarn: true},
		{name: "no relay record at all", partition: 4, foreign: 3,
			wantLog: `"msg":"the partition holds no record written by the relay","topic":"` + topic + `","partition":4,"scanned":3`},
		{name: "transaction of others at the end", partition: 5, relayed: 2, foreign: 2, txn: true, want: "0/F/2"},
		{name: "empty partition", partition: 6},
	}
	for i, tt := range tests {
		if tt.relayed > 0 {
			produceRelayed(t, cl, topic, tt.partition, uint64(0xA+i), tt.relayed)
		}
		if tt.foreign > 0 {
			produceForeign(t, brokers, topic, tt.partition, tt.foreign, tt.txn)
		}
	}
	var logs bytes.Buffer
	log := slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
	start := time.Now()
	last, partitions, err := lastPositions(ctx, cl, topic, bound, log)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("scan of %d partitions took %s", partitions, time.Since(start).Round(time.Millisecond))
	if partitions != 7 {
		t.Fatalf("partitions = %d, want 7", partitions)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := last[tt.partition]
			switch {
			case tt.want == "" && ok:
				t.Errorf("partition %d: found %s, want no relay record", tt.partition, got)
			case tt.want != "" && (!ok || got.String() != tt.want):
				t.Errorf("partition %d: found %s (%v), want %s", tt.partition, got, ok, tt.want)
			}
			if tt.wantLog == "" {
				return
			}
			var line string
			for _, l := range strings.Split(logs.String(), "\n") {
				if strings.Contains(l, tt.wantLog) {
					line = l
				}
			}
			if line == "" {
				t.Errorf("log lacks %s:\n%s", tt.wantLog, logs.String())
			}
			if isWarn := strings.Contains(line, `"level":"WARN"`); isWarn != tt.wantWarn {
				t.Errorf("log line %s: WARN %v, want %v", line, isWarn, tt.wantWarn)
			}
		})
	}
}

// TestNoDuplicatesAfterCrashWithForeignRecords: the relay produced events
// it had not confirmed when it was killed; others then appended records
// without relay_position at every partition's end (as `orderstream dlq
// replay` does). The restarted relay still finds its own last records and
// puts no event into Kafka twice.
func TestNoDuplicatesAfterCrashWithForeignRecords(t *testing.T) {
	e := newEnv(t)
	// A status interval of an hour: nothing is confirmed before the kill,
	// so the restart streams every event again.
	c := e.startChild(t, childStatus+"=1h")
	c.waitLog(t, `"msg":"streaming"`)
	if err := insertOrders(context.Background(), e.pool, "f", 1, 300, 2); err != nil {
		t.Fatal(err)
	}
	e.waitRecords(t, 600)
	for p := int32(0); p < testPartitions; p++ {
		produceForeign(t, e.brokers, e.topic, p, 3, false)
	}
	c.kill(t)

	c = e.startChild(t)
	c.waitLog(t, `"msg":"streaming"`)
	if err := insertOrders(context.Background(), e.pool, "g", 1, 50, 2); err != nil {
		t.Fatal(err)
	}
	e.waitRelayed(t)
	_ = c.cmd.Process.Signal(syscall.SIGTERM)
	if code := c.exitCode(t); code != 0 {
		t.Fatalf("relay exit %d after SIGTERM; logs:\n%s", code, c.logs.String())
	}
	events, dups := e.verify(t)
	if events != 700 || dups != 0 {
		t.Fatalf("events %d, duplicates in Kafka %d; want 700 and 0", events, dups)
	}
	if logs := c.logs.String(); !strings.Contains(logs, "followed by records it did not write") || !strings.Contains(logs, `"records_after":3`) {
		t.Errorf("the restarted relay did not log the records it scanned past:\n%s", logs)
	}
}
