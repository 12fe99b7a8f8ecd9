package main

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/orderstream/orderstream/internal/testenv"
)

// TestOrdersCommands drives an order through `orderstream orders` on a
// database of its own: results in both formats, a retried key replayed
// without a second effect, rules and If-Version refusals exiting 1.
func TestOrdersCommands(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	pgURL := testenv.NewDatabase(t)
	run := func(args ...string) (string, string, int) {
		t.Helper()
		root := newRootCmd()
		var out, errOut bytes.Buffer
		root.SetOut(&out)
		root.SetErr(&errOut)
		root.SetArgs(append(append([]string{"orders"}, args...), "--pg-url", pgURL, "--log-level", "error"))
		err := root.ExecuteContext(ctx)
		return out.String(), errOut.String(), exitCode(err)
	}
	type result struct {
		OrderID  string `json:"order_id"`
		Version  int64  `json:"version"`
		Status   string `json:"status"`
		Token    string `json:"consistency_token"`
		Replayed bool   `json:"replayed"`
	}
	asJSON := func(out string) result {
		t.Helper()
		var r result
		if err := json.Unmarshal([]byte(out), &r); err != nil {
			t.Fatalf("%v: %s", err, out)
		}
		return r
	}
	out, errOut, code := run("place", "--country", "France", "--customer", "17850", "--line", "22728:6:2.50:ALARM CLOCK", "--line", "22726:1:5", "--format", "json")
	if code != 0 {
		t.Fatalf("place: exit %d %s", code, errOut)
	}
	placed := asJSON(out)
	if placed.Version != 1 || placed.Status != "placed" || placed.Token != "1:"+placed.OrderID {
		t.Fatalf("place: %+v", placed)
	}
	id := placed.OrderID
	for i, wantReplayed := range []bool{false, true} {
		out, errOut, code = run("pay", id, "--amount", "20", "--if-version", "1", "--idempotency-key", "pay-1", "--format", "json")
		if r := asJSON(out); code != 0 || r.Version != 2 || r.Status != "paid" || r.Replayed != wantReplayed {
			t.Fatalf("pay %d: exit %d %+v %s; want version 2, replayed %v", i+1, code, r, errOut, wantReplayed)
		}
	}
	for _, tt := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"pay", id, "--amount", "20"}, 1, "rule order-already-paid"},
		{[]string{"ship", id, "--if-version", "1"}, 1, "rule version-mismatch"},
		{[]string{"ship", id, "--idempotency-key", "pay-1"}, 1, "rule idempotency-key-reused"},
		{[]string{"refund", id, "--amount", "25"}, 1, "rule amount-mismatch"},
		{[]string{"cancel", id}, 2, "--reason: is required"},
		{[]string{"place", "--country", "France", "--line", "x:1"}, 2, "--line 1"},
	} {
		_, errOut, code := run(tt.args...)
		if code != tt.code || !strings.Contains(errOut, tt.want) {
			t.Fatalf("%v: exit %d %q; want exit %d naming %q", tt.args, code, errOut, tt.code, tt.want)
		}
	}
	out, errOut, code = run("ship", id, "--carrier", "Royal Mail", "--if-version", "2")
	if code != 0 || !strings.Contains(out, "ORDER_ID") || len(strings.Fields(out)) != 10 || strings.Fields(out)[5] != id || strings.Fields(out)[6] != "3" || strings.Fields(out)[7] != "shipped" {
		t.Fatalf("ship: exit %d\n%s%s", code, out, errOut)
	}
}
