package main

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/orderstream/orderstream/consumers"
	"github.com/orderstream/orderstream/internal/rebuild"
	"github.com/orderstream/orderstream/producer/relay"
	"github.com/orderstream/orderstream/producer/topic"
	"github.com/orderstream/orderstream/projections"
	"github.com/orderstream/orderstream/projections/analytics"
)

// TestHint: an error the libraries classify gets the command that fixes it,
// still wrapping what it wrapped; any other error is returned unchanged.
func TestHint(t *testing.T) {
	t.Parallel()
	plain := errors.New("something else")
	tests := []struct {
		name string
		give error
		want string // the command the hint names; "" = unchanged
	}{
		{"left behind", fmt.Errorf("replay: %w", &rebuild.LeftoverError{Projection: "search", Generation: 4, Err: plain, Cleanup: plain}),
			"`orderstream generations drop search 4`"},
		{"killed rebuild", &rebuild.BusyError{Projection: "analytics", Generation: 3}, "`orderstream generations drop analytics 3`"},
		{"rebuild running", &rebuild.BusyError{Projection: "analytics", Generation: 3, Members: []consumers.Member{{ID: "m"}}}, ""},
		{"old generation", fmt.Errorf("cutover: %w", analytics.ErrOldGeneration), "`orderstream replay analytics`"},
		{"not set up", fmt.Errorf("write: %w", projections.ErrNotSetUp), "`orderstream generations create PROJECTION`"},
		{"no topic", fmt.Errorf("offsets: %w", consumers.ErrNoTopic), "`orderstream topic create`"},
		{"relay behind", fmt.Errorf("guard: %w", rebuild.ErrRelayBehind), "`orderstream relay`"},
		{"not migrated", fmt.Errorf("relay: %w", relay.ErrNotMigrated), "`orderstream migrate`"},
		{"no events topic", fmt.Errorf("relay: %w", topic.ErrNotFound), "`orderstream topic create`"},
		{"other", plain, ""},
		{"nil", nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := hint(tt.give)
			if tt.want == "" {
				if got != tt.give {
					t.Fatalf("hint(%v) = %v, want it unchanged", tt.give, got)
				}
				return
			}
			if !strings.Contains(got.Error(), tt.want) || !strings.HasPrefix(got.Error(), tt.give.Error()) || !errors.Is(got, tt.give) {
				t.Fatalf("hint(%v) = %q, want the error, then %s, wrapping it", tt.give, got, tt.want)
			}
		})
	}
}
