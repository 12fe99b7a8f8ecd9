package rebuild

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/orderstream/orderstream/consumers"
)

func TestCompareVersions(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name               string
		want, got, pending Versions
		wantDiff           VersionDiff
	}{
		{name: "equal", want: Versions{"a": 2, "b": 1}, got: Versions{"a": 2, "b": 1},
			wantDiff: VersionDiff{Orders: 2, Agree: 2}},
		{name: "read model ahead of the snapshot", want: Versions{"a": 1}, got: Versions{"a": 3, "new": 1},
			wantDiff: VersionDiff{Orders: 1, Agree: 1}},
		{name: "missing order", want: Versions{"a": 2, "b": 1}, got: Versions{"a": 2},
			wantDiff: VersionDiff{Orders: 2, Agree: 1, Missing: 1, MissingExamples: []string{"b"}}},
		{name: "stale order", want: Versions{"a": 3}, got: Versions{"a": 1},
			wantDiff: VersionDiff{Orders: 1, Stale: 1, StaleExamples: []string{"a (read model v1, write side v3)"}}},
		{name: "missing but its first event is past the end offsets", want: Versions{"a": 2}, got: Versions{}, pending: Versions{"a": 1},
			wantDiff: VersionDiff{Orders: 1, InFlight: 1}},
		{name: "behind and its next event is past the end offsets", want: Versions{"a": 3}, got: Versions{"a": 1}, pending: Versions{"a": 2},
			wantDiff: VersionDiff{Orders: 1, InFlight: 1}},
		{name: "a later event in flight does not cover a lost one", want: Versions{"a": 3}, got: Versions{"a": 1}, pending: Versions{"a": 3},
			wantDiff: VersionDiff{Orders: 1, Stale: 1, StaleExamples: []string{"a (read model v1, write side v3)"}}},
		{name: "only the first 5 examples, in id order", want: Versions{"f": 1, "e": 1, "d": 1, "c": 1, "b": 1, "a": 1}, got: Versions{},
			wantDiff: VersionDiff{Orders: 6, Missing: 6, MissingExamples: []string{"a", "b", "c", "d", "e"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			d := CompareVersions(tt.want, tt.got, tt.pending)
			if d.String() != tt.wantDiff.String() || d.OK() != tt.wantDiff.OK() || d.Missing != tt.wantDiff.Missing || d.Stale != tt.wantDiff.Stale {
				t.Fatalf("CompareVersions = %+v\nwant %+v", d, tt.wantDiff)
			}
		})
	}
}

func TestConsumed(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name        string
		give        []int64 // offsets of partition 0, in arrival order
		from, to    int64
		wantN       int64
		wantMissing int64
	}{
		{name: "in order", give: []int64{0, 1, 2, 3}, to: 4, wantN: 4, wantMissing: -1},
		{name: "redelivered", give: []int64{0, 1, 2, 1, 2, 3}, to: 4, wantN: 4, wantMissing: -1},
		{name: "gap", give: []int64{0, 1, 3, 4}, to: 5, wantN: 4, wantMissing: 2},
		{name: "gap filled later", give: []int64{0, 1, 3, 4, 2}, to: 5, wantN: 5, wantMissing: -1},
		{name: "out of order", give: []int64{5, 3, 4, 0, 2, 1}, to: 6, wantN: 6, wantMissing: -1},
		{name: "beyond the end not counted", give: []int64{0, 1, 2, 3, 4}, to: 3, wantN: 3, wantMissing: -1},
		{name: "from a log start", give: []int64{10, 11, 12}, from: 10, to: 13, wantN: 3, wantMissing: -1},
		{name: "tail missing", give: []int64{0, 1}, to: 4, wantN: 2, wantMissing: 2},
		{name: "head missing", give: []int64{2, 3}, to: 4, wantN: 2, wantMissing: 0},
		{name: "nothing", to: 2, wantMissing: 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := NewConsumed()
			for _, o := range tt.give {
				c.Add(0, o)
			}
			n, miss := c.Count(0, tt.from, tt.to)
			if n != tt.wantN || miss != tt.wantMissing {
				t.Fatalf("Count = %d, first missing %d; want %d, %d (ranges %v)", n, miss, tt.wantN, tt.wantMissing, c.parts[0])
			}
			problems := c.Problems(map[int32]int64{0: tt.from}, map[int32]int64{0: tt.to})
			if (len(problems) == 0) != (tt.wantN == tt.to-tt.from) {
				t.Fatalf("Problems = %v with %d of %d written", problems, n, tt.to-tt.from)
			}
		})
	}
}

// TestCountWrites: the wrapper records only what the sink wrote, and keeps
// the Preparer capability (pipelining) of a sink that has it.
func TestCountWrites(t *testing.T) {
	t.Parallel()
	batch := []consumers.Record{{Partition: 1, Offset: 0}, {Partition: 1, Offset: 1}, {Partition: 2, Offset: 7}}
	failing := sinkFunc(func(context.Context, []consumers.Record) error { return errors.New("down") })
	c := NewConsumed()
	if err := countWrites(failing, c).Write(context.Background(), batch); err == nil {
		t.Fatal("Write of a failing sink returned nil")
	}
	if n, _ := c.Count(1, 0, 2); n != 0 {
		t.Fatalf("a failed write recorded %d offsets", n)
	}
	ok := preparerFunc(func(context.Context, []consumers.Record) error { return nil })
	w := countWrites(ok, c)
	p, isPreparer := w.(consumers.Preparer)
	if !isPreparer {
		t.Fatal("the wrapper of a Preparer is no Preparer")
	}
	if err := p.Prepare(batch).Write(context.Background()); err != nil {
		t.Fatal(err)
	}
	if probs := c.Problems(map[int32]int64{1: 0, 2: 7}, map[int32]int64{1: 2, 2: 8}); len(probs) != 0 {
		t.Fatalf("after a prepared write: %s", strings.Join(probs, "; "))
	}
}

type sinkFunc func(context.Context, []consumers.Record) error

func (f sinkFunc) Write(ctx context.Context, b []consumers.Record) error { return f(ctx, b) }

type preparerFunc func(context.Context, []consumers.Record) error

func (f preparerFunc) Write(ctx context.Context, b []consumers.Record) error { return f(ctx, b) }
func (f preparerFunc) Prepare(b []consumers.Record) consumers.Prepared {
	return preparedFunc(func(ctx context.Context) error { return f(ctx, b) })
}

type preparedFunc func(context.Context) error

func (f preparedFunc) Write(ctx context.Context) error { return f(ctx) }

// countingWriteSide counts its reads.
type countingWriteSide struct{ reads int }

func (c *countingWriteSide) RelayedFacts(context.Context) (map[string]Facts, error) {
	c.reads++
	return map[string]Facts{"o1": {Version: 3}, "o2": {Version: 1}}, nil
}

func (c *countingWriteSide) RelayedVersions(context.Context) (Versions, error) {
	c.reads++
	return Versions{"o1": 3, "o2": 1}, nil
}

// TestFactsOnce: several read models verified in turn read the write side
// once, and the versions are those of the facts.
func TestFactsOnce(t *testing.T) {
	t.Parallel()
	ws := &countingWriteSide{}
	once := &FactsOnce{WriteSide: ws}
	for range 3 {
		vs, err := once.RelayedVersions(context.Background())
		if err != nil || vs["o1"] != 3 || vs["o2"] != 1 || len(vs) != 2 {
			t.Fatalf("RelayedVersions = %v, %v; want o1:3 o2:1", vs, err)
		}
		if fs, err := once.RelayedFacts(context.Background()); err != nil || len(fs) != 2 {
			t.Fatalf("RelayedFacts = %v, %v", fs, err)
		}
	}
	if ws.reads != 1 {
		t.Fatalf("write side read %d times, want once", ws.reads)
	}
}
