package main

import (
	"context"
	"io"
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
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cmd := newRootCmd()
			cmd.SetArgs(tt.args)
			cmd.SetOut(io.Discard)
			cmd.SetErr(io.Discard)
			err := cmd.ExecuteContext(context.Background())
			if exitCode(err) != 2 || err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %v (exit %d), want a usage error containing %q", err, exitCode(err), tt.want)
			}
		})
	}
}
