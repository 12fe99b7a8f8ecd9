package consumers

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/orderstream/orderstream/schemas"
	"github.com/twmb/franz-go/pkg/kgo"
)

// TestFlusher: a flush writes, then dead-letters, then commits; a failing
// step ends it before the commit; strict mode stops at a failure instead of
// dead-lettering it.
func TestFlusher(t *testing.T) {
	t.Parallel()
	errDown := errors.New("down")
	errCommit := &CommitError{Records: 4, Err: errors.New("coordinator moved")}
	errStrict := &StrictError{Topic: "orders", Offset: 2}
	tests := []struct {
		name        string
		strict      bool
		good, bad   []int64     // offsets (partition 0) of records that decoded / did not
		rejected    []int       // indexes into good the sink rejects
		parks       []int64     // offsets park returns after a rejection
		writeErr    error       // from write
		dlqErr      error       // from dlq
		commitErr   error       // from commit
		wantSteps   string      // the steps run, in order
		wantErr     error       // errors.Is
		wantResult  flushResult // written, dead, committed
		wantDLQKind map[int64]string
	}{
		{name: "all good: write, then commit", good: []int64{1, 2, 3},
			wantSteps: "write[1 2 3] commit", wantResult: flushResult{committed: true, written: 3}},
		{name: "undecodable records go to the DLQ before the commit", good: []int64{1, 3}, bad: []int64{2},
			wantSteps: "write[1 3] dlq[2] commit", wantResult: flushResult{committed: true, written: 2, dead: 1},
			wantDLQKind: map[int64]string{2: KindDecode}},
		{name: "a rejection and the records parked behind it go to the DLQ", good: []int64{1, 2, 3}, rejected: []int{1}, parks: []int64{3},
			wantSteps: "write[1 2 3] park[2] dlq[2 3] commit", wantResult: flushResult{committed: true, written: 2, dead: 2},
			wantDLQKind: map[int64]string{2: KindRejected, 3: KindParked}},
		{name: "a failed write sends and commits nothing", good: []int64{1, 2}, bad: []int64{3}, writeErr: errDown,
			wantSteps: "write[1 2]", wantErr: errDown},
		{name: "a failed DLQ send commits nothing", good: []int64{1}, bad: []int64{2}, dlqErr: errDown,
			wantSteps: "write[1] dlq[2]", wantErr: errDown},
		{name: "a failed commit is returned after the batch was done with", good: []int64{1, 2}, commitErr: errCommit,
			wantSteps: "write[1 2] commit", wantErr: errCommit, wantResult: flushResult{committed: true, written: 2}},
		{name: "strict: an undecodable record stops before the write", strict: true, good: []int64{1, 3}, bad: []int64{2},
			wantSteps: "stop[2] written 0", wantErr: errStrict},
		{name: "strict: a rejection stops after the write", strict: true, good: []int64{1, 2, 3}, rejected: []int{1},
			wantSteps: "write[1 2 3] stop[2] written 3", wantErr: errStrict},
		{name: "strict: a clean batch is committed", strict: true, good: []int64{1, 2},
			wantSteps: "write[1 2] commit", wantResult: flushResult{committed: true, written: 2}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			d := &decoded{}
			for _, o := range tt.good {
				r := &kgo.Record{Topic: "orders", Offset: o, Key: []byte("order-1")}
				d.good = append(d.good, Record{Topic: r.Topic, Offset: o, Key: r.Key, Event: schemas.Envelope{EventID: uuid.New()}})
				d.idx = append(d.idx, r)
			}
			for _, o := range tt.bad {
				d.bad = append(d.bad, failure{rec: &kgo.Record{Topic: "orders", Offset: o}, kind: KindDecode, reason: errors.New("bad envelope")})
			}
			d.n = len(tt.good) + len(tt.bad)
			var steps []string
			kinds := map[int64]string{}
			offsetsOf := func(fs []failure) string {
				os := make([]int64, len(fs))
				for i, f := range fs {
					os[i] = f.rec.Offset
				}
				slices.Sort(os)
				return fmt.Sprint(os)
			}
			f := flusher{
				strict: tt.strict,
				write: func(_ context.Context, d *decoded) (map[int]error, int, time.Time, error) {
					os := make([]int64, len(d.good))
					for i, r := range d.good {
						os[i] = r.Offset
					}
					steps = append(steps, fmt.Sprintf("write%v", os))
					if tt.writeErr != nil {
						return nil, 3, time.Now(), tt.writeErr
					}
					var rej map[int]error
					for _, i := range tt.rejected {
						if rej == nil {
							rej = map[int]error{}
						}
						rej[i] = errors.New("amount out of range")
					}
					return rej, 1, time.Time{}, nil
				},
				park: func(_ *decoded, rejected map[int]error) []failure {
					var rs []failure
					for i := range rejected {
						rs = append(rs, failure{rec: d.idx[i]})
					}
					steps = append(steps, "park"+offsetsOf(rs))
					var out []failure
					for _, o := range tt.parks {
						out = append(out, failure{rec: &kgo.Record{Topic: "orders", Offset: o}, kind: KindParked})
					}
					return out
				},
				dlq: func(_ context.Context, bad []failure) error {
					steps = append(steps, "dlq"+offsetsOf(bad))
					for _, f := range bad {
						kinds[f.rec.Offset] = f.kind
					}
					return tt.dlqErr
				},
				stop: func(_ context.Context, bad []failure, writtenGood int) error {
					steps = append(steps, fmt.Sprintf("stop%s written %d", offsetsOf(bad), writtenGood))
					return errStrict
				},
				commit: func(context.Context) error {
					steps = append(steps, "commit")
					return tt.commitErr
				},
			}
			res, err := f.flush(context.Background(), d)
			if got := strings.Join(steps, " "); got != tt.wantSteps {
				t.Errorf("steps %q, want %q", got, tt.wantSteps)
			}
			if !errors.Is(err, tt.wantErr) || (err == nil) != (tt.wantErr == nil) {
				t.Errorf("error %v, want %v", err, tt.wantErr)
			}
			if res != tt.wantResult {
				t.Errorf("result %+v, want %+v", res, tt.wantResult)
			}
			if tt.wantDLQKind != nil && !maps.Equal(kinds, tt.wantDLQKind) {
				t.Errorf("dlq kinds %v, want %v", kinds, tt.wantDLQKind)
			}
		})
	}
}
