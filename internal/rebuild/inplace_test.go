package rebuild

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/orderstream/orderstream/consumers"
	"github.com/orderstream/orderstream/internal/testenv"
	"github.com/orderstream/orderstream/internal/testfixture"
)

func TestParseFrom(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		give    string
		want    From
		wantErr bool
	}{
		{name: "empty is earliest", give: "", want: Earliest},
		{name: "earliest", give: "earliest", want: Earliest},
		{name: "offset", give: "1200", want: From{Offset: 1200}},
		{name: "zero offset", give: "0", want: From{Offset: 0}},
		{name: "timestamp", give: "2011-12-01T08:30:00+01:00", want: From{Offset: -1, Time: time.Date(2011, 12, 1, 7, 30, 0, 0, time.UTC)}},
		{name: "date", give: "2011-12-01", want: From{Offset: -1, Time: time.Date(2011, 12, 1, 0, 0, 0, 0, time.UTC)}},
		{name: "negative offset", give: "-3", wantErr: true},
		{name: "garbage", give: "yesterday", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := ParseFrom(tt.give)
			if (err != nil) != tt.wantErr {
				t.Fatalf("ParseFrom(%q) error = %v, wantErr %v", tt.give, err, tt.wantErr)
			}
			if err == nil && (got.Offset != tt.want.Offset || !got.Time.Equal(tt.want.Time)) {
				t.Fatalf("ParseFrom(%q) = %+v, want %+v", tt.give, got, tt.want)
			}
		})
	}
}

// TestInPlace: an in-place replay refuses while the projection's group has
// a member and names it; once the daemon stopped, the dry-run plan moves
// every partition from its committed offset to the earliest one, a partial
// plan clamps --from into the log, and executing resets the group and
// clears the serving generation, which the restarted daemon fills again to
// the same answer.
func TestInPlace(t *testing.T) {
	brokers := testenv.KafkaBrokers(t)
	events := testfixture.RealEvents(t)[:2000]
	topic := testfixture.ProduceTopic(t, brokers, events)
	adm := admin(t, brokers)
	m := analyticsModel(t)
	group := testenv.Name("daemon")
	stop := startDaemon(t, brokers, topic, group, m.daemon)
	waitCaughtUp(t, adm, topic, group, 3*time.Minute)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	base, err := m.answer(ctx)
	if err != nil {
		t.Fatal(err)
	}

	g, err := consumers.InspectGroup(ctx, adm, topic, group)
	if err != nil || len(g.Members) != 1 {
		t.Fatalf("daemon group: %+v, %v; want one member", g, err)
	}
	blockedPlan, err := PlanInPlace(ctx, adm, m.p, topic, group, Earliest)
	if err != nil || blockedPlan.Blocked == nil || len(blockedPlan.Blocked.Members) != 1 {
		t.Fatalf("PlanInPlace with a running daemon: %+v, %v; want a plan blocked by one member", blockedPlan, err)
	}
	err = ExecuteInPlace(ctx, adm, m.p, blockedPlan)
	var active *ActiveMembersError
	if !errors.As(err, &active) {
		t.Fatalf("ExecuteInPlace with a running daemon: %v, want an ActiveMembersError", err)
	}
	for _, want := range []string{g.Members[0].ID, g.Members[0].ClientID, g.Members[0].Host} {
		if !strings.Contains(err.Error(), want) {
			t.Fatalf("refusal %q does not name %q", err, want)
		}
	}

	stop()
	var plan Plan
	eventually(t, time.Minute, "the group empty after the daemon left", func() error {
		plan, err = PlanInPlace(ctx, adm, m.p, topic, group, Earliest)
		if err == nil && plan.Blocked != nil {
			return plan.Blocked
		}
		return err
	})
	if !plan.Clear || plan.Generation != 1 || len(plan.Partitions) != testfixture.TopicPartitions {
		t.Fatalf("plan = %+v, want generation 1 cleared, %d partitions", plan, testfixture.TopicPartitions)
	}
	var total int64
	for _, e := range plan.Partitions {
		if e.New != 0 || e.Current < 0 {
			t.Fatalf("plan entry %+v: want committed → 0", e)
		}
		total += e.Current
	}
	if total != int64(len(events)) {
		t.Fatalf("plan moves %d records back, want %d", total, len(events))
	}

	partial, err := PlanInPlace(ctx, adm, m.p, topic, group, From{Offset: 100})
	if err != nil {
		t.Fatal(err)
	}
	if partial.Clear {
		t.Fatal("a partial replay must not clear the read model")
	}
	for i, e := range partial.Partitions {
		if want := min(int64(100), plan.Partitions[i].Current); e.New != want {
			t.Fatalf("partial plan entry %+v: want new offset %d (clamped to the end)", e, want)
		}
	}

	if err := ExecuteInPlace(ctx, adm, m.p, plan); err != nil {
		t.Fatal(err)
	}
	g, err = consumers.InspectGroup(ctx, adm, topic, group)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range g.Partitions {
		if p.Committed != 0 {
			t.Fatalf("partition %d committed at %d after the reset, want 0", p.Partition, p.Committed)
		}
	}
	if got, err := m.answer(ctx); err != nil || got == base {
		t.Fatalf("answer after clearing = %s, %v; want an empty read model", got, err)
	}

	startDaemon(t, brokers, topic, group, m.daemon)
	waitCaughtUp(t, adm, topic, group, 3*time.Minute)
	if got, err := m.answer(ctx); err != nil || got != base {
		t.Fatalf("answer after the in-place replay = %s, %v; want %s", got, err, base)
	}
}

// The refusal names each member, and for static members (instance ids)
// says why a stopped daemon may still be listed.
func TestActiveMembersErrorNamesStaticMembers(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		give     []consumers.Member
		want     []string
		wantNone string
	}{
		{name: "dynamic", give: []consumers.Member{{ID: "m-1", ClientID: "kgo", Host: "/10.0.0.1"}},
			want: []string{"member m-1 (client kgo, host /10.0.0.1)"}, wantNone: "session-timeout"},
		{name: "static", give: []consumers.Member{{ID: "m-2", InstanceID: "consume-search-0-search", ClientID: "kgo", Host: "/10.0.0.2"}},
			want: []string{"member m-2 (instance consume-search-0-search, client kgo, host /10.0.0.2)", "stays a member for its --session-timeout"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := (&ActiveMembersError{Group: "orderstream-search", State: "Stable", Members: tt.give}).Error()
			for _, w := range tt.want {
				if !strings.Contains(got, w) {
					t.Errorf("error %q lacks %q", got, w)
				}
			}
			if tt.wantNone != "" && strings.Contains(got, tt.wantNone) {
				t.Errorf("error %q mentions %q", got, tt.wantNone)
			}
		})
	}
}
