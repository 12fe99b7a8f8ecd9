package main

import (
	"context"
	"errors"
	"fmt"
	"testing"
)

func TestExitCode(t *testing.T) {
	t.Parallel()
	stopped, cancel := context.WithCancel(context.Background())
	cancel()
	canceled := fmt.Errorf("rebuild of analytics generation 3 stopped: %w", context.Canceled)
	tests := []struct {
		name string
		err  error
		want int
	}{
		{"success", nil, 0},
		{"usage", usagef("--limit 0: want 1..1000"), 2},
		{"failure", errors.New("clickhouse unreachable"), 1},
		{"command stopped by a signal", canceled, 130},
		{"daemon stopped by a signal", stoppedCleanly(stopped, canceled), 0},
		{"daemon failed by itself", stoppedCleanly(context.Background(), errors.New("boom")), 1},
		{"daemon cancelled from inside, not by a signal", stoppedCleanly(context.Background(), canceled), 130},
	}
	for _, tt := range tests {
		if got := exitCode(tt.err); got != tt.want {
			t.Errorf("%s: exitCode(%v) = %d, want %d", tt.name, tt.err, got, tt.want)
		}
	}
}
