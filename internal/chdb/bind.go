package chdb

import (
	"time"
	_ "unsafe" // go:linkname to clickhouse-go's bind

	_ "github.com/ClickHouse/clickhouse-go/v2" // the package holding bind
)

// bind is clickhouse-go's own argument binding (bind.go of
// github.com/ClickHouse/clickhouse-go/v2): what its native protocol does
// with `?`, `$1` and named arguments before sending a statement. Linked, not
// copied, so a statement reaches the engine exactly as it reaches a server;
// a clickhouse-go release that renames it fails this package's build.
//
//go:linkname bind github.com/ClickHouse/clickhouse-go/v2.bind
func bind(tz *time.Location, query string, args ...any) (string, error)
