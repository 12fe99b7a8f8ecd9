package relay

import (
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

// The fixtures below are pgoutput protocol version 1 messages encoded by
// hand after "Logical Replication Message Formats" in the PostgreSQL docs
// (https://www.postgresql.org/docs/current/protocol-logicalrep-message-formats.html):
// integers big-endian, strings NUL-terminated, timestamps in microseconds
// since 2000-01-01 UTC.

type wire []byte

func (w wire) u8(v byte) wire    { return append(w, v) }
func (w wire) u16(v uint16) wire { return binary.BigEndian.AppendUint16(w, v) }
func (w wire) u32(v uint32) wire { return binary.BigEndian.AppendUint32(w, v) }
func (w wire) u64(v uint64) wire { return binary.BigEndian.AppendUint64(w, v) }
func (w wire) str(s string) wire { return append(append(w, s...), 0) }
func (w wire) pgTime(t time.Time) wire {
	return w.u64(uint64(t.Sub(time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)).Microseconds()))
}

// Byte1('B') Int64 final LSN, Int64 commit time, Int32 xid.
func beginMsg(lsn uint64, at time.Time) []byte {
	return wire{}.u8('B').u64(lsn).pgTime(at).u32(731)
}

// Byte1('C') Int8 flags, Int64 commit LSN, Int64 end LSN, Int64 commit time.
func commitMsg(lsn, end uint64, at time.Time) []byte {
	return wire{}.u8('C').u8(0).u64(lsn).u64(end).pgTime(at)
}

// Byte1('R') Int32 OID, String namespace, String name, Int8 replica
// identity, Int16 columns, per column Int8 flags, String name, Int32 type
// OID, Int32 type modifier.
func relationMsg(oid uint32, name string, typeOID uint32, cols ...string) []byte {
	w := wire{}.u8('R').u32(oid).str("public").str(name).u8('d').u16(uint16(len(cols)))
	for _, c := range cols {
		w = w.u8(0).str(c).u32(typeOID).u32(0xffffffff)
	}
	return w
}

// tupleCol is one TupleData column: kind 't' (text) or 'b' (binary) with
// data, 'n' (NULL) or 'u' (unchanged TOAST) without.
type tupleCol struct {
	kind byte
	data string
}

// Byte1('I') Int32 OID, Byte1('N'), TupleData: Int16 columns, per column
// Byte1 kind and, for 't' and 'b', Int32 length and the bytes.
func insertMsg(oid uint32, cols ...tupleCol) []byte {
	w := wire{}.u8('I').u32(oid).u8('N').u16(uint16(len(cols)))
	for _, c := range cols {
		w = w.u8(c.kind)
		if c.kind == 't' || c.kind == 'b' {
			w = append(w.u32(uint32(len(c.data))), c.data...)
		}
	}
	return w
}

// Byte1('M') Int8 flags (1: transactional), Int64 LSN, String prefix,
// Int32 length, the content.
func messageMsg(lsn uint64, prefix, content string) []byte {
	return append(wire{}.u8('M').u8(1).u64(lsn).str(prefix).u32(uint32(len(content))), content...)
}

// Byte1('Y') Int32 OID, String namespace, String name.
func typeMsg(oid uint32, name string) []byte { return wire{}.u8('Y').u32(oid).str("public").str(name) }

// XLogData after its Byte1('w'): Int64 WAL start, Int64 server WAL end,
// Int64 send time, the pgoutput message.
func xlogData(start uint64, msg []byte) []byte {
	return append(wire{}.u64(start).u64(start+uint64(len(msg))).pgTime(time.Unix(1e9, 0)), msg...)
}

// The outbox's columns, in the table's order (producer/store migrations).
var outboxCols = []string{"id", "event_id", "aggregate_id", "aggregate_version", "event_type", "occurred_at", "traceparent", "envelope", "tx_id"}

const (
	outboxOID = 16390
	otherOID  = 16400
	commitAt  = 0x16B3748
	endAt     = 0x16B3778
)

// row is an outbox insert with the given columns replaced.
func row(id string, replace map[int]tupleCol) []byte {
	cols := []tupleCol{
		{'t', id}, {'t', "0b5e7f7c-3c1a-4c1e-9a57-9a3c2c1b" + fmt.Sprintf("%04s", id)}, {'t', "order-7"}, {'t', "3"},
		{'t', "OrderPaid"}, {'t', "2026-12-01 10:11:12.345678+00"}, {'t', "00-aa-bb-01"}, {'t', `{"id":` + id + `}`}, {'t', "991"},
	}
	for i, c := range replace {
		cols[i] = c
	}
	return insertMsg(outboxOID, cols...)
}

// describe renders ev on one line, times in UTC, for comparison.
func describe(ev walEvent) string {
	switch ev.kind {
	case walNone:
		return "none"
	case walBegin:
		return fmt.Sprintf("begin %s at %s", ev.lsn, ev.commitTime.UTC().Format(time.RFC3339Nano))
	case walCommit:
		return fmt.Sprintf("commit %s", ev.lsn)
	case walMessage:
		return fmt.Sprintf("message %s %q", ev.prefix, ev.content)
	case walInsert:
		e := ev.event
		typ := e.eventType
		if e.schemaVersion > 0 {
			typ += fmt.Sprintf(" schema %d", e.schemaVersion)
		}
		return fmt.Sprintf("insert %s %s %s v%d %s %s %s %s", e.pos, e.eventID, e.aggregateID, e.aggregateVersion,
			typ, e.occurredAt.Format(time.RFC3339Nano), e.traceparent, e.envelope)
	}
	return fmt.Sprintf("kind %d", ev.kind)
}

func TestDecoder(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 12, 1, 10, 11, 12, 345678000, time.UTC)
	begin := beginMsg(commitAt, at)
	commit := commitMsg(commitAt, endAt, at)
	rel := relationMsg(outboxOID, "outbox", 25, outboxCols...)
	ins := func(id string) string {
		return "insert 0/16B3748/" + id + " 0b5e7f7c-3c1a-4c1e-9a57-9a3c2c1b" + fmt.Sprintf("%04s", id) +
			" order-7 v3 OrderPaid 2026-12-01T10:11:12.345678Z 00-aa-bb-01 {\"id\":" + id + "}"
	}
	tests := []struct {
		name    string
		give    [][]byte // fed in order
		want    []string // describe of each event; on wantErr, of all but the last message
		wantErr string   // substring of the last message's error
		wantIs  error    // the last message's error wraps it
	}{
		{name: "begin gives the commit LSN and time", give: [][]byte{begin}, want: []string{"begin 0/16B3748 at 2026-12-01T10:11:12.345678Z"}},
		{name: "a transaction of two outbox rows", give: [][]byte{rel, begin, row("1", nil), row("2", nil), commit},
			want: []string{"none", "begin 0/16B3748 at 2026-12-01T10:11:12.345678Z", ins("1"), ins("2"), "commit 0/16B3778"}},
		{name: "the index restarts in the next transaction",
			give: [][]byte{rel, begin, row("1", nil), commit, beginMsg(commitAt, at), row("5", nil)},
			want: []string{"none", "begin 0/16B3748 at 2026-12-01T10:11:12.345678Z", ins("1"), "commit 0/16B3778",
				"begin 0/16B3748 at 2026-12-01T10:11:12.345678Z", "insert 0/16B3748/1 0b5e7f7c-3c1a-4c1e-9a57-9a3c2c1b0005 order-7 v3 OrderPaid 2026-12-01T10:11:12.345678Z 00-aa-bb-01 {\"id\":5}"}},
		{name: "another table's rows are skipped", give: [][]byte{relationMsg(otherOID, "orders", 25, "id"), begin, insertMsg(otherOID, tupleCol{'t', "9"}), commit},
			want: []string{"none", "begin 0/16B3748 at 2026-12-01T10:11:12.345678Z", "none", "commit 0/16B3778"}},
		{name: "a row of a relation never announced is skipped", give: [][]byte{begin, row("1", nil)},
			want: []string{"begin 0/16B3748 at 2026-12-01T10:11:12.345678Z", "none"}},
		{name: "a row outside a transaction is skipped", give: [][]byte{rel, row("1", nil)}, want: []string{"none", "none"}},
		{name: "a commit outside a transaction is skipped", give: [][]byte{commit}, want: []string{"none"}},
		{name: "a relation re-sent between rows keeps the index", give: [][]byte{rel, begin, row("1", nil), rel, row("2", nil)},
			want: []string{"none", "begin 0/16B3748 at 2026-12-01T10:11:12.345678Z", ins("1"), "none", ins("2")}},
		{name: "columns are found by name, in any order", give: [][]byte{
			relationMsg(outboxOID, "outbox", 25, "envelope", "id", "event_id", "aggregate_id", "aggregate_version", "event_type", "occurred_at", "traceparent"),
			begin, insertMsg(outboxOID, tupleCol{'t', "{}"}, tupleCol{'t', "4"}, tupleCol{'t', "e-4"}, tupleCol{'t', "order-9"}, tupleCol{'t', "12"},
				tupleCol{'t', "OrderPlaced"}, tupleCol{'t', "2026-12-01 12:00:00+05:30"}, tupleCol{'n', ""})},
			want: []string{"none", "begin 0/16B3748 at 2026-12-01T10:11:12.345678Z", "insert 0/16B3748/1 e-4 order-9 v12 OrderPlaced 2026-12-01T06:30:00Z  {}"}},
		{name: "schema_version is read when the relation has it", give: [][]byte{
			relationMsg(outboxOID, "outbox", 25, "envelope", "id", "event_id", "aggregate_id", "aggregate_version", "event_type", "schema_version", "occurred_at", "traceparent"),
			begin, insertMsg(outboxOID, tupleCol{'t', "{}"}, tupleCol{'t', "4"}, tupleCol{'t', "e-4"}, tupleCol{'t', "order-9"}, tupleCol{'t', "12"},
				tupleCol{'t', "OrderPlaced"}, tupleCol{'t', "2"}, tupleCol{'t', "2026-12-01 12:00:00+05:30"}, tupleCol{'n', ""})},
			want: []string{"none", "begin 0/16B3748 at 2026-12-01T10:11:12.345678Z", "insert 0/16B3748/1 e-4 order-9 v12 OrderPlaced schema 2 2026-12-01T06:30:00Z  {}"}},
		{name: "an unknown column type OID is read as text", give: [][]byte{relationMsg(outboxOID, "outbox", 987654, outboxCols...), begin, row("1", nil)},
			want: []string{"none", "begin 0/16B3748 at 2026-12-01T10:11:12.345678Z", ins("1")}},
		{name: "a heartbeat message", give: [][]byte{messageMsg(commitAt, heartbeatPrefix, "2026-12-01 10:11:12+00")},
			want: []string{`message orderstream.heartbeat "2026-12-01 10:11:12+00"`}},
		{name: "type messages are skipped", give: [][]byte{typeMsg(70000, "money_gbp")}, want: []string{"none"}},
		{name: "an outbox relation missing columns", give: [][]byte{relationMsg(outboxOID, "outbox", 25, "id", "event_id", "aggregate_id", "aggregate_version", "event_type", "occurred_at")},
			wantErr: "relation public.outbox lacks outbox columns [traceparent envelope]"},
		{name: "a NULL envelope", give: [][]byte{rel, begin, row("7", map[int]tupleCol{7: {'n', ""}})}, want: []string{"none", "begin 0/16B3748 at 2026-12-01T10:11:12.345678Z"},
			wantErr: "transaction committing at 0/16B3748: outbox row 7: envelope, aggregate_id or event_id missing"},
		{name: "an envelope in binary format", give: [][]byte{rel, begin, row("7", map[int]tupleCol{7: {'b', "{}"}})}, want: []string{"none", "begin 0/16B3748 at 2026-12-01T10:11:12.345678Z"},
			wantErr: "outbox row 7: envelope, aggregate_id or event_id missing"},
		{name: "an unchanged TOAST event id", give: [][]byte{rel, begin, row("7", map[int]tupleCol{1: {'u', ""}})}, want: []string{"none", "begin 0/16B3748 at 2026-12-01T10:11:12.345678Z"},
			wantErr: "outbox row 7: envelope, aggregate_id or event_id missing"},
		{name: "a version that is not a number", give: [][]byte{rel, begin, row("7", map[int]tupleCol{3: {'t', "three"}})}, want: []string{"none", "begin 0/16B3748 at 2026-12-01T10:11:12.345678Z"},
			wantErr: "outbox row 7: aggregate_version"},
		{name: "a time not in ISO format", give: [][]byte{rel, begin, row("7", map[int]tupleCol{5: {'t', "Tue Dec 01 10:11:12 2026 UTC"}})}, want: []string{"none", "begin 0/16B3748 at 2026-12-01T10:11:12.345678Z"},
			wantErr: `outbox row 7: occurred_at: timestamp "Tue Dec 01 10:11:12 2026 UTC"`},
		{name: "an empty message", give: [][]byte{{}}, wantErr: "empty pgoutput message", wantIs: errTruncated},
		{name: "an unknown message type", give: [][]byte{{'Z', 0, 0, 0, 0}}, wantErr: "replication message not supported"},
		{name: "a truncated begin", give: [][]byte{begin[:12]}, wantErr: "BeginMessage must have 20 bytes"},
		{name: "a truncated commit", give: [][]byte{commit[:20]}, wantErr: "CommitMessage must have 25 bytes"},
		{name: "a relation cut inside a column's type", give: [][]byte{rel[:28]}, wantIs: errTruncated, wantErr: "pgoutput message 'R' of 28 bytes"},
		{name: "a relation cut inside a column's name", give: [][]byte{rel[:40]}, wantErr: "RelationMessage.Column[1].Name decode string error"},
		{name: "a relation cut inside its name", give: [][]byte{rel[:15]}, wantErr: "RelationMessage.RelationName decode string error"},
		{name: "an insert cut inside its tuple", give: [][]byte{rel, begin, row("1", nil)[:30]}, want: []string{"none", "begin 0/16B3748 at 2026-12-01T10:11:12.345678Z"},
			wantIs: errTruncated, wantErr: "pgoutput message 'I' of 30 bytes"},
		{name: "a message cut inside its content", give: [][]byte{messageMsg(commitAt, heartbeatPrefix, "2026-12-01 10:11:12+00")[:40]},
			wantIs: errTruncated, wantErr: "pgoutput message 'M' of 40 bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			d := newDecoder()
			var got []string
			for i, msg := range tt.give {
				ev, err := d.decode(msg)
				last := i == len(tt.give)-1
				if err != nil {
					if !last || tt.wantErr == "" {
						t.Fatalf("message %d: %v", i, err)
					}
					if !strings.Contains(err.Error(), tt.wantErr) {
						t.Errorf("error %q, want it to contain %q", err, tt.wantErr)
					}
					if tt.wantIs != nil && !errors.Is(err, tt.wantIs) {
						t.Errorf("error %q does not wrap %v", err, tt.wantIs)
					}
					break
				}
				if last && tt.wantErr != "" {
					t.Fatalf("message %d decoded as %s, want an error containing %q", i, describe(ev), tt.wantErr)
				}
				got = append(got, describe(ev))
			}
			if strings.Join(got, "\n") != strings.Join(tt.want, "\n") {
				t.Errorf("events:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
		})
	}
}

func TestDecoderXLogData(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 12, 1, 10, 11, 12, 0, time.UTC)
	tests := []struct {
		name    string
		give    []byte
		want    string
		wantErr string
	}{
		{name: "a begin inside XLogData", give: xlogData(0x16B3700, beginMsg(commitAt, at)), want: "begin 0/16B3748 at 2026-12-01T10:11:12Z"},
		{name: "a header shorter than 24 bytes", give: xlogData(0x16B3700, nil)[:23], wantErr: "parse XLogData: XLogData must be at least 24 bytes"},
		{name: "XLogData without a message", give: xlogData(0x16B3700, nil), wantErr: "decode pgoutput message at 0/16B3700: empty pgoutput message"},
		{name: "a truncated message names its WAL start", give: xlogData(0x16B3700, beginMsg(commitAt, at)[:9]), wantErr: "decode pgoutput message at 0/16B3700: pgoutput message 'B' of 9 bytes: BeginMessage must have 20 bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ev, err := newDecoder().decodeXLogData(tt.give)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want it to contain %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := describe(ev); got != tt.want {
				t.Errorf("got %s, want %s", got, tt.want)
			}
		})
	}
}
