// Package chdb is a clickhouse-go driver.Conn over ClickHouse embedded in a
// Python process by chDB (PyPI package chdb-core, ClickHouse 26.9): a way to
// run code written against clickhouse-go on a current ClickHouse release
// where no server of that release can be installed. For tests only.
//
// What is real: every statement is the caller's text with its arguments
// bound by clickhouse-go's own bind function (the one the native protocol
// uses for `?` placeholders); results come back in ClickHouse's Native
// format and are decoded and scanned by clickhouse-go's own column types
// (same conversions, same type errors as against a server); batch inserts
// are encoded by clickhouse-go's own columns (same Append type checks) and
// inserted as a Native block. Errors are *clickhouse.Exception values with
// the engine's code and message.
//
// What is not: the native protocol itself (handshake, packets, compression,
// progress, per-query settings from the context, cancellation of a running
// statement) and concurrency: statements run one at a time in one session.
//
// The Python side is server.py (embedded), one long-lived process per Conn
// speaking JSON lines over stdin/stdout, its state in a directory of the
// caller's.
package chdb
