package relay

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/jackc/pglogrepl"
)

// Mode selects where the relay reads the outbox from.
type Mode string

// Relay modes.
const (
	// ModeWAL streams outbox INSERTs through logical replication (pgoutput).
	ModeWAL Mode = "wal"
	// ModePoll polls the outbox table ordered by (tx_id, id) below the
	// visibility watermark; for databases without logical replication.
	ModePoll Mode = "poll"
)

// Position is where an event sits in the relay's total order. It is written
// to every Kafka record as the relay_position header and compared on restart
// to skip events a partition already holds.
//
// Text form (the header value):
//   - WAL mode: "<commit LSN>/<index>", e.g. "0/1A2B3C4D/17": the LSN of the
//     transaction's commit record (as PostgreSQL prints it, itself containing
//     one '/') and the 1-based index of the row within the transaction. Rows
//     committed before the replication slot existed are backfilled with the
//     commit LSN 0/0 and their outbox id as index ("0/0/<id>"), which sorts
//     before every streamed position.
//   - poll mode: "<tx_id>/<id>", e.g. "7431/52001": the row's xid8 and its
//     outbox id.
//
// Positions of different modes do not compare (see Less).
type Position struct {
	Mode  Mode
	Major uint64 // WAL: commit LSN; poll: tx_id (xid8)
	Minor uint64 // WAL: index in transaction (1-based) or outbox id when backfilled; poll: outbox id
}

// String returns the text form described on Position.
func (p Position) String() string {
	if p.Mode == ModeWAL {
		return fmt.Sprintf("%s/%d", pglogrepl.LSN(p.Major), p.Minor)
	}
	return fmt.Sprintf("%d/%d", p.Major, p.Minor)
}

// ParsePosition parses the text form of a Position: three '/'-separated parts
// (hex/hex/decimal) is a WAL position, two (decimal/decimal) a poll position.
func ParsePosition(s string) (Position, error) {
	parts := strings.Split(s, "/")
	switch len(parts) {
	case 3:
		lsn, err := pglogrepl.ParseLSN(parts[0] + "/" + parts[1])
		if err != nil {
			return Position{}, fmt.Errorf("relay position %q: commit LSN: %w", s, err)
		}
		idx, err := strconv.ParseUint(parts[2], 10, 64)
		if err != nil {
			return Position{}, fmt.Errorf("relay position %q: index: %w", s, err)
		}
		return Position{Mode: ModeWAL, Major: uint64(lsn), Minor: idx}, nil
	case 2:
		tx, err := strconv.ParseUint(parts[0], 10, 64)
		if err != nil {
			return Position{}, fmt.Errorf("relay position %q: tx_id: %w", s, err)
		}
		id, err := strconv.ParseUint(parts[1], 10, 64)
		if err != nil {
			return Position{}, fmt.Errorf("relay position %q: id: %w", s, err)
		}
		return Position{Mode: ModePoll, Major: tx, Minor: id}, nil
	}
	return Position{}, fmt.Errorf("relay position %q: want <commit LSN>/<index> or <tx_id>/<id>", s)
}

// Less reports whether p comes before q. ok is false when the positions are
// of different modes and cannot be compared.
func (p Position) Less(q Position) (less, ok bool) {
	if p.Mode != q.Mode {
		return false, false
	}
	if p.Major != q.Major {
		return p.Major < q.Major, true
	}
	return p.Minor < q.Minor, true
}

// alreadyPublished is the duplicate rule: an event at pos was published
// before when its partition's last record (at last, present only if the
// partition is not empty) is at pos or after it. Positions within a
// partition only grow, because the relay produces in position order through
// an idempotent producer. Positions of another mode never count as
// published (at-least-once wins over a guess).
func alreadyPublished(pos Position, last Position, present bool) bool {
	if !present {
		return false
	}
	less, ok := last.Less(pos)
	return ok && !less
}
