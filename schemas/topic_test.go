package schemas_test

import (
	"fmt"
	"testing"

	"github.com/orderstream/orderstream/schemas"
)

func TestReplayTopicConfigs(t *testing.T) {
	t.Parallel()
	a := schemas.ReplayTopicConfigs()
	got := fmt.Sprintf("retention.ms=%s retention.bytes=%s cleanup.policy=%s", *a["retention.ms"], *a["retention.bytes"], *a["cleanup.policy"])
	if want := "retention.ms=-1 retention.bytes=-1 cleanup.policy=delete"; got != want || len(a) != 3 {
		t.Errorf("ReplayTopicConfigs = %s (%d settings), want %s (3 settings)", got, len(a), want)
	}
	*a["cleanup.policy"] = "compact"
	if b := schemas.ReplayTopicConfigs(); *b["cleanup.policy"] != "delete" {
		t.Error("a caller's change to one map leaked into the next call")
	}
}
