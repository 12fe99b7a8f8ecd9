package relay

import (
	"sync"
	"time"

	"github.com/jackc/pglogrepl"
)

// txn is one replicated transaction whose events are in flight.
type txn struct {
	commitLSN  pglogrepl.LSN // from BEGIN: LSN of the commit record
	endLSN     pglogrepl.LSN // from COMMIT: end of the commit record; the position confirmed
	commitTime time.Time
	pending    int  // events produced and not yet acked
	committed  bool // COMMIT seen
}

// tracker decides how far the WAL may be confirmed. A transaction is done
// when its COMMIT was seen and Kafka acked every one of its events; the
// confirmable position is the end LSN of the last transaction such that it
// and every earlier transaction are done. Transactions are kept in the order
// their BEGINs arrived, which is commit order (pgoutput sends whole
// transactions in commit order). Safe for concurrent use: acks come from the
// Kafka client's goroutines.
type tracker struct {
	mu            sync.Mutex
	queue         []*txn
	confirmed     pglogrepl.LSN
	confirmedTime time.Time
	inFlight      int
}

// newTracker starts at the already confirmed position from.
func newTracker(from pglogrepl.LSN, at time.Time) *tracker {
	return &tracker{confirmed: from, confirmedTime: at}
}

// begin opens a transaction; its events are added with add.
func (t *tracker) begin(commitLSN pglogrepl.LSN, commitTime time.Time) *txn {
	t.mu.Lock()
	defer t.mu.Unlock()
	x := &txn{commitLSN: commitLSN, commitTime: commitTime}
	t.queue = append(t.queue, x)
	return x
}

// add counts one more event of x in flight. Call it before producing.
func (t *tracker) add(x *txn) {
	t.mu.Lock()
	x.pending++
	t.inFlight++
	t.mu.Unlock()
}

// ack marks one event of x acked by Kafka.
func (t *tracker) ack(x *txn) {
	t.mu.Lock()
	defer t.mu.Unlock()
	x.pending--
	t.inFlight--
	t.advance()
}

// commit marks x's COMMIT seen, ending at endLSN.
func (t *tracker) commit(x *txn, endLSN pglogrepl.LSN) {
	t.mu.Lock()
	defer t.mu.Unlock()
	x.committed = true
	x.endLSN = endLSN
	t.advance()
}

func (t *tracker) advance() {
	n := 0
	for _, x := range t.queue {
		if !x.committed || x.pending > 0 {
			break
		}
		if x.endLSN > t.confirmed {
			t.confirmed = x.endLSN
			t.confirmedTime = x.commitTime
		}
		n++
	}
	if n > 0 {
		clear(t.queue[:n])
		t.queue = t.queue[n:]
	}
}

// position returns the confirmable LSN and the commit time of its
// transaction.
func (t *tracker) position() (pglogrepl.LSN, time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.confirmed, t.confirmedTime
}

// oldest returns the commit time of the oldest transaction not yet
// confirmable, or the commit time of the last confirmable one when none is
// open (the lag clock).
func (t *tracker) oldest() time.Time {
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.queue) > 0 {
		return t.queue[0].commitTime
	}
	return t.confirmedTime
}

// events returns the number of events in flight.
func (t *tracker) events() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.inFlight
}
