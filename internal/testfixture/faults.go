package testfixture

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/orderstream/orderstream/consumers"
	"github.com/twmb/franz-go/pkg/kadm"
)

// WriteGate holds the writes of GatedSinks once a number of records were
// written, until the test lets them go on: a fault test then injects its
// faults mid-stream, however fast or slow the machine. The zero value
// holds nothing. Safe for concurrent use.
type WriteGate struct {
	written atomic.Int64
	mu      sync.Mutex
	limit   int64         // writes wait once written ≥ limit …
	open    chan struct{} // … until this is closed; nil: never wait
}

// NewWriteGate returns a gate holding writes once limit records were
// written.
func NewWriteGate(limit int64) *WriteGate {
	g := &WriteGate{}
	g.HoldAt(limit)
	return g
}

// HoldAt releases the writes waiting now, if any, and holds the next ones
// once limit records (in all) were written.
func (g *WriteGate) HoldAt(limit int64) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.open != nil {
		close(g.open)
	}
	g.limit, g.open = limit, make(chan struct{})
}

// Open releases the waiting writes and holds none from now on.
func (g *WriteGate) Open() { g.HoldAt(math.MaxInt64) }

// Written returns how many records the gated sinks have written (each
// successful Write counts its batch; a redelivered record counts again).
func (g *WriteGate) Written() int64 { return g.written.Load() }

// WaitHeld waits until the writes are held (Written ≥ the limit), failing
// the test after timeout.
func (g *WriteGate) WaitHeld(t testing.TB, timeout time.Duration) int64 {
	t.Helper()
	g.mu.Lock()
	limit := g.limit
	g.mu.Unlock()
	deadline := time.Now().Add(timeout)
	for g.Written() < limit {
		if time.Now().After(deadline) {
			t.Fatalf("writes not held after %s: %d records written, gate at %d", timeout, g.Written(), limit)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return g.Written()
}

// wait blocks while the gate holds writes, or until ctx is done.
func (g *WriteGate) wait(ctx context.Context) error {
	g.mu.Lock()
	limit, open := g.limit, g.open
	g.mu.Unlock()
	if open == nil || g.written.Load() < limit {
		return nil
	}
	select {
	case <-open:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// GatedSink is a consumers.Sink whose writes wait at Gate. Only Write is
// gated: the runtime then does not prepare batches ahead (the Sink's
// optional interfaces are hidden), which is no concern to a fault test.
type GatedSink struct {
	consumers.Sink
	Gate *WriteGate
}

// Write waits at the gate, then writes batch and counts it as written.
func (s GatedSink) Write(ctx context.Context, batch []consumers.Record) error {
	if err := s.Gate.wait(ctx); err != nil {
		return err
	}
	if err := s.Sink.Write(ctx, batch); err != nil {
		return err
	}
	s.Gate.written.Add(int64(len(batch)))
	return nil
}

// WaitDrained polls until group has committed the end offset of every
// partition of topic, failing the test after timeout with the lag it saw
// last.
func WaitDrained(t testing.TB, adm *kadm.Client, group, topic string, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var last string
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		ends, err1 := adm.ListEndOffsets(ctx, topic)
		committed, err2 := adm.FetchOffsets(ctx, group)
		cancel()
		if err1 == nil && err2 == nil {
			behind := int64(0)
			ends.Each(func(o kadm.ListedOffset) {
				c, ok := committed.Lookup(topic, o.Partition)
				switch {
				case !ok:
					behind += o.Offset
				case c.At < o.Offset:
					behind += o.Offset - c.At
				}
			})
			if behind == 0 {
				return
			}
			last = fmt.Sprintf("lag %d", behind)
		} else {
			last = errors.Join(err1, err2).Error()
		}
		time.Sleep(250 * time.Millisecond)
	}
	t.Fatalf("group %s did not drain %s within %s: %s", group, topic, timeout, last)
}
