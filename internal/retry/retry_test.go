package retry

import (
	"testing"
	"time"
)

func TestExponential(t *testing.T) {
	t.Parallel()
	b := Exponential(100*time.Millisecond, 400*time.Millisecond)
	// Without jitter the waits would be 100, 200, 400, 400 ms; with ±50 %
	// each lies within half to one and a half of that.
	for i, want := range []time.Duration{100, 200, 400, 400, 400} {
		want *= time.Millisecond
		got := b.NextBackOff()
		if got < want/2 || got > want*3/2 {
			t.Errorf("wait %d = %s, want within ±50 %% of %s", i+1, got, want)
		}
	}
}
