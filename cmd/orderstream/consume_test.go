package main

import (
	"errors"
	"strings"
	"testing"
)

// TestConsumeUsage checks that the daemon refuses settings that do not apply
// before it connects to anything.
func TestConsumeUsage(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"index prefix for analytics", []string{"consume", "analytics", "--index-prefix", "shop"}, "--index-prefix applies to the search projection only"},
		{"unknown projection", []string{"consume", "billing"}, `unknown projection "billing"`},
		{"instance id with a slash", []string{"consume", "search", "--instance-id", "pod/0"}, `instance id "pod/0": character '/' at 3`},
		{"session timeout below 1s", []string{"consume", "search", "--session-timeout", "500ms"}, "session timeout 500ms: below 1s"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			wantUsageError(t, tt.args, tt.want)
		})
	}
}

// TestInstanceID checks how --instance-id resolves: derived from the host
// name and the projection by default, none for a dynamic member.
func TestInstanceID(t *testing.T) {
	t.Parallel()
	host := func(h string, err error) func() (string, error) { return func() (string, error) { return h, err } }
	tests := []struct {
		name     string
		flag     string
		hostname func() (string, error)
		want     string
		wantErr  string
	}{
		{name: "StatefulSet pod", hostname: host("consume-search-0", nil), want: "consume-search-0-search"},
		{name: "host name with characters Kafka refuses", hostname: host("shop:web 1", nil), want: "shop-web-1-search"},
		{name: "explicit", flag: "search-a", hostname: host("h", nil), want: "search-a"},
		{name: "dynamic member", flag: "none", hostname: host("h", nil), want: ""},
		{name: "no host name", hostname: host("", errors.New("uname failed")), wantErr: "--instance-id: no host name"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := instanceID(tt.flag, "search", tt.hostname)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) || exitCode(err) != 2 {
					t.Fatalf("instanceID = %q, %v; want a usage error containing %q", got, err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Errorf("instanceID = %q, %v; want %q", got, err, tt.want)
			}
		})
	}
}
