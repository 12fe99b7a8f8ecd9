// Package retry holds orderstream's one retry policy, so that the relay's
// reconnects, the consumers' sink retries, the search sink's requests and
// the import's per-document retries back off alike.
package retry

import (
	"time"

	"github.com/cenkalti/backoff/v5"
)

// Exponential returns a fresh backoff that waits initial, then doubles up
// to max, each wait randomised by ±50 % (jitter, so that many clients
// retrying one server spread out). It never gives up by itself: bound it
// with backoff.WithMaxElapsedTime or the caller's context. Not safe for
// concurrent use; make one per retry loop.
func Exponential(initial, max time.Duration) *backoff.ExponentialBackOff {
	b := backoff.NewExponentialBackOff()
	b.InitialInterval = initial
	b.MaxInterval = max
	b.Multiplier = 2
	b.RandomizationFactor = 0.5
	b.Reset()
	return b
}
