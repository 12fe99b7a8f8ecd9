package consumers

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// A member joining makes the first revoke partitions: the records it has
// gathered but not written yet are written and committed before they move,
// so the newcomer starts after them and nothing is applied twice.
func TestRebalanceCommitsRevokedPartitions(t *testing.T) {
	t.Parallel()
	const topic = "orders"
	brokers := newFake(t, topic, 4)
	ids := produce(t, brokers, topic, 200)
	cfg := testConfig(brokers, topic)
	cfg.BatchMaxRecords = 100000
	cfg.BatchMaxWait = time.Minute     // only a revoke or shutdown writes the batch
	cfg.BatchMinInterval = time.Minute // (the caught-up rule off)
	rec := newRecorder()
	sink := &fakeSink{WriteFn: func(_ context.Context, b []Record) error { rec.record(b); return nil }}
	c1, err := New(cfg, sink, WithLogger(testLogger(t)), fastGroup())
	if err != nil {
		t.Fatal(err)
	}
	start(t, c1)
	eventually(t, 15*time.Second, "first member to gather every record", func() bool {
		c1.mu.Lock()
		defer c1.mu.Unlock()
		return len(c1.batch.buf.recs) == len(ids)
	})
	if n := rec.total(); n != 0 {
		t.Fatalf("written before the rebalance: %d, want 0", n)
	}
	c2, err := New(cfg, sink, WithLogger(testLogger(t)), fastGroup())
	if err != nil {
		t.Fatal(err)
	}
	start(t, c2)
	eventually(t, 20*time.Second, "revoked partitions committed", func() bool {
		return sum(committed(t, brokers, cfg.Group, topic)) == int64(len(ids))
	})
	eventually(t, 20*time.Second, "second member to own partitions", func() bool {
		return len(c2.Health().Partitions) > 0
	})
	if got := rec.distinct(); got != len(ids) {
		t.Fatalf("distinct written = %d, want %d", got, len(ids))
	}
	if got := rec.total(); got != len(ids) {
		t.Errorf("written %d times for %d events: revoked records were applied twice", got, len(ids))
	}
}

func TestHealthAndReadiness(t *testing.T) {
	t.Parallel()
	const topic = "orders"
	brokers := newFake(t, topic, 2)
	ids := produce(t, brokers, topic, 30)
	cfg := testConfig(brokers, topic)
	cfg.ReadyLag = 5
	cfg.BatchMaxRecords = 10
	gate := make(chan struct{})
	sink := &fakeSink{WriteFn: func(ctx context.Context, b []Record) error {
		select {
		case <-gate:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}}
	c, err := New(cfg, sink, WithLogger(testLogger(t)), fastGroup())
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(Handler(c, nil))
	defer srv.Close()
	get := func(path string) (int, string) {
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, _ := get("/healthz"); code != http.StatusServiceUnavailable {
		t.Errorf("/healthz before Run = %d, want 503", code)
	}
	stop, _ := start(t, c)
	eventually(t, 15*time.Second, "lag known and above the bound", func() bool {
		h := c.Health()
		return h.Alive && h.Joined && strings.Contains(h.Reason, "exceeds the ready bound")
	})
	if code, body := get("/readyz"); code != http.StatusServiceUnavailable || !strings.Contains(body, "exceeds the ready bound") {
		t.Errorf("/readyz while lagging = %d %s", code, body)
	}
	if code, _ := get("/healthz"); code != http.StatusOK {
		t.Errorf("/healthz while running = %d, want 200", code)
	}
	close(gate)
	eventually(t, 15*time.Second, "ready after catching up", func() bool { return c.Health().Ready })
	if code, _ := get("/readyz"); code != http.StatusOK {
		t.Errorf("/readyz caught up = %d, want 200", code)
	}
	_, metrics := get("/metrics")
	for _, want := range []string{
		`orderstream_consumer_events_processed_total{group="g-orders",projection="g-orders"} 30`,
		`orderstream_consumer_lag_records{group="g-orders",partition="0",projection="g-orders"} 0`,
		`orderstream_consumer_batch_size_records_count`,
		`orderstream_consumer_ready{group="g-orders",projection="g-orders"} 1`,
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	_ = ids
}

func TestConfigValidate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		give    Config
		wantErr []string
	}{
		{name: "ok", give: Config{Brokers: []string{"h:1"}, Topic: "t", Group: "g"}},
		{name: "missing required", give: Config{}, wantErr: []string{"brokers", "topic: required", "group: required"}},
		{name: "bad values", give: Config{Brokers: []string{"nohost"}, Topic: "t", Group: "g", DLQTopic: "t", BatchMaxRecords: -1, RetryInitial: time.Minute, RetryMax: time.Second},
			wantErr: []string{`"nohost" is not host:port`, "must differ", "batch max records: -1", "retry initial 1m0s exceeds retry max 1s"}},
		{name: "static member", give: Config{Brokers: []string{"h:1"}, Topic: "t", Group: "g", InstanceID: "consume-search-0-search", SessionTimeout: 6 * time.Second}},
		{name: "bad instance id", give: Config{Brokers: []string{"h:1"}, Topic: "t", Group: "g", InstanceID: "pod 0"},
			wantErr: []string{`instance id "pod 0": character ' ' at 3`}},
		{name: "instance id ..", give: Config{Brokers: []string{"h:1"}, Topic: "t", Group: "g", InstanceID: ".."},
			wantErr: []string{`instance id "..": cannot be`}},
		{name: "instance id too long", give: Config{Brokers: []string{"h:1"}, Topic: "t", Group: "g", InstanceID: strings.Repeat("a", 250)},
			wantErr: []string{"250 characters, at most 249"}},
		{name: "session timeout", give: Config{Brokers: []string{"h:1"}, Topic: "t", Group: "g", SessionTimeout: 100 * time.Millisecond},
			wantErr: []string{"session timeout 100ms: below 1s"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.give.Validate()
			if len(tt.wantErr) == 0 {
				if err != nil {
					t.Fatalf("Validate = %v, want nil", err)
				}
				return
			}
			if err == nil {
				t.Fatal("Validate = nil, want errors")
			}
			for _, w := range tt.wantErr {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Validate = %q, lacks %q", err, w)
				}
			}
		})
	}
}

func TestInstanceIDFor(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, host, projection, want string
	}{
		{"StatefulSet pod", "consume-analytics-1", "analytics", "consume-analytics-1-analytics"},
		{"fully qualified host", "web1.shop.example", "search", "web1.shop.example-search"},
		{"characters Kafka refuses", "héte:1", "search", "h--te-1-search"},
		{"cut to 249", strings.Repeat("h", 300), "search", strings.Repeat("h", 249)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := InstanceIDFor(tt.host, tt.projection)
			if got != tt.want {
				t.Errorf("InstanceIDFor(%q, %q) = %q, want %q", tt.host, tt.projection, got, tt.want)
			}
			cfg := Config{Brokers: []string{"h:1"}, Topic: "t", Group: "g", InstanceID: got}
			if err := cfg.Validate(); err != nil {
				t.Errorf("derived id %q is refused: %v", got, err)
			}
		})
	}
}
