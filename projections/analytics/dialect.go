package analytics

import (
	"context"
	"fmt"
	"strings"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

// CutoverScope is how a cutover switches the stable views on the server at
// hand. On both scopes no reader ever finds a view missing, and each
// reference to a view in a statement reads one whole generation (every
// dashboard query references one view). A statement referencing several
// views, or one view twice, resolves each reference on its own: one that
// runs across a cutover may combine the two generations, on either scope
// (TestCutoverUnderConcurrentReads counts them on 18.16).
type CutoverScope string

// Cutover scopes, by server release.
const (
	// CutoverAllViews: ClickHouse before 20.10 (18.16 here). One
	// multi-table RENAME TABLE, under the server's DDL lock: at every
	// instant all the views read the same generation.
	CutoverAllViews CutoverScope = "all views at once"
	// CutoverEachView: ClickHouse 20.10 and later (Atomic databases), where
	// a multi-table RENAME is not atomic (a reader may find a view missing
	// mid-rename). Each view is replaced by CREATE OR REPLACE VIEW, an
	// atomic exchange, one after the other: for the milliseconds between
	// them the views read different generations.
	CutoverEachView CutoverScope = "each view"
)

// dialect is the one place that knows how this package's SQL differs
// between ClickHouse releases. Everything else — migrations, views, the
// Sink's inserts, every dashboard query — is one text that runs unchanged on
// 18.16 and on current releases (the compatibility suite checks both). It
// is read once per Store from the server's handshake (Store.dialect).
type dialect struct {
	version string       // "18.16.1"
	cutover CutoverScope // how ensureViews switches the stable views
}

// dialectFor returns the dialect of a server release. 20.10 made Atomic the
// default database engine and EXCHANGE/CREATE OR REPLACE atomic; tested
// here: 18.16 (local server), 25.8 (testcontainers) and 26.9 (chDB).
func dialectFor(v driver.ServerVersion) dialect {
	d := dialect{
		version: fmt.Sprintf("%d.%d.%d", v.Version.Major, v.Version.Minor, v.Version.Patch),
		cutover: CutoverEachView,
	}
	if v.Version.Major < 20 || (v.Version.Major == 20 && v.Version.Minor < 10) {
		d.cutover = CutoverAllViews
	}
	return d
}

// switchViews points the stable views named in stale at the definitions in
// defs (view name → SELECT), in the way that keeps d.cutover's promise.
func (d dialect) switchViews(ctx context.Context, s *Store, stale []string, defs map[string]string) error {
	if d.cutover == CutoverEachView {
		for _, v := range stale {
			if err := s.ddl(ctx, "CREATE OR REPLACE VIEW "+s.table(v)+" AS "+defs[v]); err != nil {
				return fmt.Errorf("replace view %s: %w", v, err)
			}
		}
		return nil
	}
	// 18.16: build every new view beside the old one, then one RENAME TABLE
	// statement moves the old ones aside and the new ones in.
	var pairs, olds []string
	for _, v := range stale {
		next := s.table(v + "_next")
		if err := s.ddl(ctx, "DROP TABLE IF EXISTS "+next); err != nil {
			return fmt.Errorf("drop stale view %s: %w", next, err)
		}
		if err := s.ddl(ctx, "CREATE VIEW "+next+" AS "+defs[v]); err != nil {
			return fmt.Errorf("create view %s: %w", next, err)
		}
		exists, err := s.exists(ctx, v)
		if err != nil {
			return err
		}
		if exists {
			old := s.table(v + "_old")
			if err := s.ddl(ctx, "DROP TABLE IF EXISTS "+old); err != nil {
				return fmt.Errorf("drop stale view %s: %w", old, err)
			}
			pairs = append(pairs, s.table(v)+" TO "+old)
			olds = append(olds, old)
		}
		pairs = append(pairs, next+" TO "+s.table(v))
	}
	if err := s.ddl(ctx, "RENAME TABLE "+strings.Join(pairs, ", ")); err != nil {
		return fmt.Errorf("rename views: %w", err)
	}
	for _, old := range olds {
		if err := s.ddl(ctx, "DROP TABLE IF EXISTS "+old); err != nil {
			return fmt.Errorf("drop replaced view %s: %w", old, err)
		}
	}
	return nil
}
