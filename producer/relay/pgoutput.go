package relay

import (
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/jackc/pglogrepl"
)

// heartbeatPrefix is the prefix of the logical messages heartbeats writes.
const heartbeatPrefix = "orderstream.heartbeat"

// walKind says what a decoded pgoutput message means to the relay.
type walKind int

const (
	walNone    walKind = iota // nothing to do: a relation, type or origin message, another table's change, a change outside a transaction
	walBegin                  // a transaction starts: lsn = its commit LSN, commitTime set
	walInsert                 // an outbox row: event set, its position = commit LSN / index in the transaction (from 1)
	walCommit                 // the transaction ends: lsn = its end LSN, the position to confirm once its events are acked
	walMessage                // a logical decoding message: prefix and content set
)

// walEvent is one decoded pgoutput message, in the relay's terms.
type walEvent struct {
	kind       walKind
	lsn        pglogrepl.LSN // walBegin: commit LSN; walCommit: transaction end LSN
	commitTime time.Time     // walBegin
	event      *event        // walInsert
	prefix     string        // walMessage
	content    []byte        // walMessage; shares the decoded message's bytes
}

// errTruncated marks a pgoutput or XLogData message too short for its fields.
var errTruncated = errors.New("truncated message")

// decoder turns the messages of a pgoutput stream (protocol version 1,
// https://www.postgresql.org/docs/current/protocol-logicalrep-message-formats.html)
// into walEvents. It remembers the outbox's columns from its Relation
// message (sent before the first change of a relation and again after its
// schema changes) and the open transaction's commit LSN and event index.
// Not safe for concurrent use; one per replication stream.
type decoder struct {
	columns    map[uint32]outboxColumns // by relation OID; only relations named outbox
	inTxn      bool
	commitLSN  pglogrepl.LSN
	commitTime time.Time
	index      uint64
}

func newDecoder() *decoder { return &decoder{columns: map[uint32]outboxColumns{}} }

// decodeXLogData decodes the body of an XLogData message (the CopyData
// payload after its 'w' byte). Errors: a header shorter than 24 bytes, and
// those of decode, which name the message's WAL start.
func (d *decoder) decodeXLogData(data []byte) (walEvent, error) {
	xld, err := pglogrepl.ParseXLogData(data)
	if err != nil {
		return walEvent{}, fmt.Errorf("parse XLogData: %w", err)
	}
	ev, err := d.decode(xld.WALData)
	if err != nil {
		return walEvent{}, fmt.Errorf("decode pgoutput message at %s: %w", xld.WALStart, err)
	}
	return ev, nil
}

// decode decodes one pgoutput message. Errors: an empty or truncated
// message (errTruncated), a message type pgoutput v1 does not send, an
// outbox relation lacking one of the columns the relay reads, an outbox
// row whose columns do not parse.
func (d *decoder) decode(data []byte) (walEvent, error) {
	m, err := parse(data)
	if err != nil {
		return walEvent{}, err
	}
	switch m := m.(type) {
	case *pglogrepl.RelationMessage:
		if m.RelationName != "outbox" {
			return walEvent{}, nil
		}
		oc, err := columnsOf(m)
		if err != nil {
			return walEvent{}, err
		}
		d.columns[m.RelationID] = oc
	case *pglogrepl.BeginMessage:
		d.inTxn, d.commitLSN, d.commitTime, d.index = true, m.FinalLSN, m.CommitTime, 0
		return walEvent{kind: walBegin, lsn: m.FinalLSN, commitTime: m.CommitTime}, nil
	case *pglogrepl.InsertMessage:
		oc, ok := d.columns[m.RelationID]
		if !ok || !d.inTxn {
			return walEvent{}, nil // another table of the publication
		}
		e, err := oc.decodeInsert(m.Tuple)
		if err != nil {
			return walEvent{}, fmt.Errorf("transaction committing at %s: %w", d.commitLSN, err)
		}
		d.index++
		e.pos = Position{Mode: ModeWAL, Major: uint64(d.commitLSN), Minor: d.index}
		e.committedAt = d.commitTime
		return walEvent{kind: walInsert, event: e}, nil
	case *pglogrepl.CommitMessage:
		if !d.inTxn {
			return walEvent{}, nil
		}
		d.inTxn = false
		return walEvent{kind: walCommit, lsn: m.TransactionEndLSN}, nil
	case *pglogrepl.LogicalDecodingMessage:
		return walEvent{kind: walMessage, prefix: m.Prefix, content: m.Content}, nil
	}
	return walEvent{}, nil
}

// parse is pglogrepl.Parse, which indexes past the end of a truncated
// message instead of returning an error; parse turns that into errTruncated.
// It caps data's capacity first, so that a length field longer than the
// message cannot read the receive buffer's bytes beyond it.
func parse(data []byte) (m pglogrepl.Message, err error) {
	if len(data) == 0 {
		return nil, fmt.Errorf("empty pgoutput message: %w", errTruncated)
	}
	data = data[:len(data):len(data)]
	defer func() {
		if p := recover(); p != nil {
			m, err = nil, fmt.Errorf("pgoutput message %q of %d bytes: %w (%v)", data[0], len(data), errTruncated, p)
		}
	}()
	if m, err = pglogrepl.Parse(data); err != nil {
		return nil, fmt.Errorf("pgoutput message %q of %d bytes: %w", data[0], len(data), err)
	}
	return m, nil
}

// outboxColumns are the outbox columns the relay reads, by position in
// the relation.
type outboxColumns struct {
	id, eventID, aggregateID, aggregateVersion, eventType, occurredAt, traceparent, envelope int
	schemaVersion                                                                            int // -1: not in the relation (header omitted)
}

// columnsOf finds the outbox columns in rel by name; their type OIDs are not
// looked at, as every value is read in text format.
func columnsOf(rel *pglogrepl.RelationMessage) (outboxColumns, error) {
	idx := map[string]int{}
	for i, c := range rel.Columns {
		idx[c.Name] = i
	}
	var oc outboxColumns
	var missing []string
	get := func(name string, dst *int) {
		i, ok := idx[name]
		if !ok {
			missing = append(missing, name)
		}
		*dst = i
	}
	get("id", &oc.id)
	get("event_id", &oc.eventID)
	get("aggregate_id", &oc.aggregateID)
	get("aggregate_version", &oc.aggregateVersion)
	get("event_type", &oc.eventType)
	get("occurred_at", &oc.occurredAt)
	get("traceparent", &oc.traceparent)
	get("envelope", &oc.envelope)
	oc.schemaVersion = -1
	if i, ok := idx["schema_version"]; ok {
		oc.schemaVersion = i
	}
	if len(missing) > 0 {
		return oc, fmt.Errorf("relation %s.%s lacks outbox columns %v", rel.Namespace, rel.RelationName, missing)
	}
	return oc, nil
}

// decodeInsert turns an outbox INSERT into an event (position not set). A
// column that is not in text format (NULL, unchanged TOAST, binary) reads
// as absent.
func (oc outboxColumns) decodeInsert(t *pglogrepl.TupleData) (*event, error) {
	col := func(i int) []byte {
		if i >= len(t.Columns) || t.Columns[i].DataType != pglogrepl.TupleDataTypeText {
			return nil
		}
		return t.Columns[i].Data
	}
	e := &event{
		eventID:     string(col(oc.eventID)),
		aggregateID: string(col(oc.aggregateID)),
		eventType:   string(col(oc.eventType)),
		traceparent: string(col(oc.traceparent)),
		envelope:    col(oc.envelope),
	}
	var err error
	if e.outboxID, err = strconv.ParseInt(string(col(oc.id)), 10, 64); err != nil {
		return nil, fmt.Errorf("outbox row %q: id: %w", col(oc.id), err)
	}
	if e.aggregateVersion, err = strconv.ParseInt(string(col(oc.aggregateVersion)), 10, 64); err != nil {
		return nil, fmt.Errorf("outbox row %s: aggregate_version: %w", col(oc.id), err)
	}
	if oc.schemaVersion >= 0 && col(oc.schemaVersion) != nil {
		v := col(oc.schemaVersion)
		if e.schemaVersion, err = strconv.Atoi(string(v)); err != nil {
			return nil, fmt.Errorf("outbox row %s: schema_version: %w", col(oc.id), err)
		}
	}
	if e.occurredAt, err = parsePgTime(string(col(oc.occurredAt))); err != nil {
		return nil, fmt.Errorf("outbox row %s: occurred_at: %w", col(oc.id), err)
	}
	if e.envelope == nil || e.aggregateID == "" || e.eventID == "" {
		return nil, fmt.Errorf("outbox row %s: envelope, aggregate_id or event_id missing from the WAL record", col(oc.id))
	}
	return e, nil
}

// parsePgTime parses timestamptz text output (DateStyle ISO).
func parsePgTime(s string) (time.Time, error) {
	for _, layout := range []string{"2006-01-02 15:04:05.999999999-07", "2006-01-02 15:04:05.999999999-07:00", "2006-01-02 15:04:05.999999999-07:00:00"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC(), nil
		}
	}
	return time.Time{}, fmt.Errorf("timestamp %q: not in ISO output format", s)
}
