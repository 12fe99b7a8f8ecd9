// Package migrations holds the DDL of the CDC relay's own tables
// (relay_checkpoint, relay_poll_cursor) as goose SQL files. Only
// producer/relay reads or writes those tables; other packages use
// relay.Inspect and relay.ResetSlot.
//
// The files share goose's version sequence and version table
// (goose_db_version) with producer/store's migrations, which applies both
// directories as one: 00002_relay.sql was applied under that version before
// it moved here, so databases migrated earlier neither re-run nor miss it. A
// new relay migration takes the next free version number of the two
// directories together; store.Migrate refuses a number used twice.
package migrations

import "embed"

// FS holds the relay's goose migrations (*.sql at its root).
//
//go:embed *.sql
var FS embed.FS
