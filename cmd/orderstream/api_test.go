package main

import (
	"context"
	"io"
	"strings"
	"testing"
)

// TestAPIUsage checks that the API refuses unsafe settings as usage errors
// naming the flag, before it serves anything.
func TestAPIUsage(t *testing.T) {
	t.Parallel()
	oidc := []string{"api", "--oidc-audience", "orderstream-api", "--oidc-client-id", "dashboard"}
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"plain http issuer", append(oidc, "--oidc-issuer", "http://id.example.com/realms/shop"), `--oidc-issuer "http://id.example.com/realms/shop": want https`},
		{"trusted proxy not a CIDR", append(oidc, "--oidc-issuer", "https://id.example.com", "--trusted-proxy", "10.0.0.1"), `--trusted-proxy "10.0.0.1": want a CIDR`},
		{"auth none on all interfaces", []string{"api", "--auth", "none", "--listen", "0.0.0.0:8080"}, "loopback"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			wantUsageError(t, tt.args, tt.want)
		})
	}
}

// wantUsageError runs the command line args and fails t unless it ends in
// a usage error (exit 2) whose text contains want.
func wantUsageError(t *testing.T, args []string, want string) {
	t.Helper()
	cmd := newRootCmd()
	cmd.SetArgs(args)
	cmd.SetOut(io.Discard)
	cmd.SetErr(io.Discard)
	err := cmd.ExecuteContext(context.Background())
	if exitCode(err) != 2 || err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("err = %v (exit %d), want a usage error containing %q", err, exitCode(err), want)
	}
}
