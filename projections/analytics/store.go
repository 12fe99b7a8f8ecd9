package analytics

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"path"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/orderstream/orderstream/projections"
)

// Projection is the name of this read model in the generation registry
// (read_model_generations.read_model).
const Projection = "analytics"

// Generation states recorded in read_model_generations: the shared ones
// (projections.State*) and StateDropped, which only the registry keeps.
const (
	StateBuilding = projections.StateBuilding // being filled (by a replay); written by the live sink, not read
	StateServing  = projections.StateServing  // what the stable views show; exactly one at a time
	StateRetired  = projections.StateRetired  // replaced by a cutover, kept (and still written) for Rollback
	StateDropped  = "dropped"                 // tables dropped; the row stays as history
)

// Errors of the generation API: the shared ones of every read model.
var (
	ErrNoGeneration = projections.ErrNoGeneration
	ErrNoPrevious   = projections.ErrNoPrevious
	ErrServing      = projections.ErrServing
	ErrExists       = projections.ErrExists
	// ErrOldGeneration: the generation's order_status table was created by
	// an earlier release, keyed by order alone (merges kept only each
	// order's last event), so the status fold of the order_status view
	// cannot read it; rebuild the read model instead of serving it.
	ErrOldGeneration = errors.New("generation created by an earlier release: its order_status table keeps one row per order, not one per event")
)

//go:embed migrations
var migrationFS embed.FS

// migration is one versioned step of the schema.
type migration struct {
	version int
	name    string
	sql     string // may hold several statements, each ending with ";" at a line end
}

// loadMigrations reads migrations/<scope>/NNNN_name.sql in version order.
func loadMigrations(scope string) ([]migration, error) {
	entries, err := fs.ReadDir(migrationFS, path.Join("migrations", scope))
	if err != nil {
		return nil, err
	}
	var out []migration
	for _, e := range entries {
		num, name, ok := strings.Cut(strings.TrimSuffix(e.Name(), ".sql"), "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil || !strings.HasSuffix(e.Name(), ".sql") {
			return nil, fmt.Errorf("migration file %s: want NNNN_name.sql", e.Name())
		}
		b, err := migrationFS.ReadFile(path.Join("migrations", scope, e.Name()))
		if err != nil {
			return nil, err
		}
		out = append(out, migration{version: v, name: name, sql: string(b)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].version < out[j].version })
	return out, nil
}

// statements splits a migration into statements, dropping "--" comment lines.
func statements(sql string) []string {
	var b strings.Builder
	for _, line := range strings.Split(sql, "\n") {
		if strings.HasPrefix(strings.TrimSpace(line), "--") {
			continue
		}
		b.WriteString(line)
		b.WriteByte('\n')
	}
	var out []string
	for _, s := range strings.Split(b.String(), ";\n") {
		if s = strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(s), ";")); s != "" {
			out = append(out, s)
		}
	}
	return out
}

// Store administers the read model's schema and generations in one database.
// It is safe for concurrent use; the operations of different processes on
// the same database are safe where documented (Migrate), otherwise an
// operator runs one at a time.
type Store struct {
	conn driver.Conn
	db   string
	log  *slog.Logger

	cluster clusterDDL // the cluster the DDL runs on; zero: one server

	mu      sync.Mutex
	dialect *dialect // read from the server once, on first need
}

// StoreOption configures a Store.
type StoreOption func(*Store)

// WithStoreLogger sets the logger; default slog.Default().
func WithStoreLogger(l *slog.Logger) StoreOption { return func(s *Store) { s.log = l } }

// WithCluster makes the Store create, switch and drop its tables and views
// ON CLUSTER name (a remote_servers entry of the server): replicated tables,
// generation tables sharded by order_id behind Distributed tables (see
// clusterDDL). Default "": one server, plain ReplacingMergeTree tables.
func WithCluster(name string) StoreOption {
	return func(s *Store) { s.cluster = clusterDDL{name: name} }
}

// ddl runs one statement of this package's DDL, on the cluster when there
// is one.
func (s *Store) ddl(ctx context.Context, st string) error {
	for _, q := range s.cluster.rewrite(st) {
		if err := s.conn.Exec(ctx, q); err != nil {
			return err
		}
	}
	return nil
}

// NewStore returns a Store over database on conn (see Open). It does not
// touch the server.
func NewStore(conn driver.Conn, database string, opts ...StoreOption) (*Store, error) {
	if conn == nil {
		return nil, errors.New("analytics store: nil connection")
	}
	if !identRE.MatchString(database) {
		return nil, fmt.Errorf("analytics store: database %q: want letters, digits and '_'", database)
	}
	s := &Store{conn: conn, db: database, log: slog.Default()}
	for _, o := range opts {
		o(s)
	}
	if s.cluster.name != "" && !identRE.MatchString(s.cluster.name) {
		return nil, fmt.Errorf("analytics store: cluster %q: want letters, digits and '_'", s.cluster.name)
	}
	return s, nil
}

// Database returns the database name.
func (s *Store) Database() string { return s.db }

func (s *Store) table(name string) string { return "`" + s.db + "`.`" + name + "`" }

func genSuffix(n uint32) string { return "g" + strconv.FormatUint(uint64(n), 10) }

// generationTables are the bases of a generation's tables, <base>_g<N>.
var generationTables = []string{"order_lines", "orders", "order_status", "product_months"}

// tableName returns the physical table of base ("order_lines") in generation n.
func tableName(base string, n uint32) string { return base + "_" + genSuffix(n) }

func (s *Store) expand(sql string, gen uint32) string {
	r := strings.NewReplacer("${db}", "`"+s.db+"`", "${gen}", genSuffix(gen))
	return r.Replace(sql)
}

// sqlDialect returns the server's dialect, read from its handshake on the
// first call (the connection's first dial) and kept.
func (s *Store) sqlDialect() (dialect, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.dialect != nil {
		return *s.dialect, nil
	}
	v, err := s.conn.ServerVersion()
	if err != nil {
		return dialect{}, fmt.Errorf("clickhouse server version: %w", err)
	}
	d := dialectFor(*v)
	s.dialect = &d
	s.log.Debug("clickhouse dialect", "projection", Projection, "version", d.version, "cutover", d.cutover)
	return d, nil
}

// CutoverScope returns what a reader of the stable views sees during a
// cutover on this server: CutoverAllViews (ClickHouse before 20.10) or
// CutoverEachView (later releases). It dials the server on first use.
func (s *Store) CutoverScope() (CutoverScope, error) {
	d, err := s.sqlDialect()
	return d.cutover, err
}

// ServerVersion returns the server's version string (SELECT version()).
func (s *Store) ServerVersion(ctx context.Context) (string, error) {
	var v string
	if err := s.conn.QueryRow(ctx, "SELECT version()").Scan(&v); err != nil {
		return "", fmt.Errorf("clickhouse version: %w", err)
	}
	return v, nil
}

// Migrate brings the database up to this build's schema, idempotently:
// creates the database, schema_migrations and the registry, applies every
// pending migration of the database and of each generation that is not
// dropped, creates generation 1 as serving on first run, and (re)creates the
// stable views on the serving generation when they are missing or point
// elsewhere. Applied migrations are recorded in schema_migrations (scope
// "database" or "g<n>", version). Every migration statement is idempotent
// (IF NOT EXISTS), so processes migrating at the same time are safe.
func (s *Store) Migrate(ctx context.Context) error {
	if err := s.ddl(ctx, "CREATE DATABASE IF NOT EXISTS `"+s.db+"`"); err != nil {
		return fmt.Errorf("create database %s: %w", s.db, err)
	}
	err := s.ddl(ctx, `CREATE TABLE IF NOT EXISTS `+s.table("schema_migrations")+` (
		scope String, version UInt32, name String, applied_at DateTime('UTC')
	) ENGINE = ReplacingMergeTree ORDER BY (scope, version)`)
	if err != nil {
		return fmt.Errorf("create %s.schema_migrations: %w", s.db, err)
	}
	if err := s.apply(ctx, "database", 0); err != nil {
		return err
	}
	gens, err := s.Generations(ctx)
	if err != nil {
		return err
	}
	if len(gens) == 0 {
		if err := s.apply(ctx, "generation", 1); err != nil {
			return err
		}
		now := time.Now().UTC()
		if err := s.record(ctx, Generation{Number: 1, State: StateServing, CreatedAt: now, CutoverAt: now}); err != nil {
			return err
		}
		s.log.Info("created generation 1 (serving)", "projection", Projection, "generation", 1)
		gens = []Generation{{Number: 1, State: StateServing}}
	}
	for _, g := range gens {
		if g.State != StateDropped {
			if err := s.apply(ctx, "generation", g.Number); err != nil {
				return err
			}
		}
	}
	serving, err := s.Serving(ctx)
	if err != nil {
		return err
	}
	return s.ensureViews(ctx, serving)
}

// apply runs the pending migrations of scope ("database", or "generation"
// for generation gen).
func (s *Store) apply(ctx context.Context, scope string, gen uint32) error {
	ms, err := loadMigrations(scope)
	if err != nil {
		return fmt.Errorf("load %s migrations: %w", scope, err)
	}
	key := scope
	if scope == "generation" {
		key = genSuffix(gen)
	}
	applied := map[int]bool{}
	rows, err := s.conn.Query(ctx, "SELECT DISTINCT version FROM "+s.table("schema_migrations")+" WHERE scope = ?", key)
	if err != nil {
		return fmt.Errorf("read %s.schema_migrations: %w", s.db, err)
	}
	for rows.Next() {
		var v uint32
		if err := rows.Scan(&v); err != nil {
			rows.Close()
			return fmt.Errorf("read %s.schema_migrations: %w", s.db, err)
		}
		applied[int(v)] = true
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("read %s.schema_migrations: %w", s.db, err)
	}
	for _, m := range ms {
		if applied[m.version] {
			continue
		}
		for _, st := range statements(s.expand(m.sql, gen)) {
			has, err := s.hasAddedColumn(ctx, st)
			if err != nil {
				return fmt.Errorf("migration %s %04d_%s: %w", key, m.version, m.name, err)
			}
			if has {
				continue
			}
			if err := s.ddl(ctx, st); err != nil && !columnExists(st, err) {
				return fmt.Errorf("migration %s %04d_%s: %w", key, m.version, m.name, err)
			}
		}
		// An INSERT through Exec hangs on 18.16 (the server waits for a data
		// block): every insert of this package is a batch.
		b, err := s.conn.PrepareBatch(ctx, "INSERT INTO "+s.table("schema_migrations")+" (scope, version, name, applied_at)")
		if err == nil {
			if err = b.Append(key, uint32(m.version), m.name, time.Now().UTC().Truncate(time.Second)); err == nil {
				err = b.Send()
			} else {
				_ = b.Abort()
			}
		}
		if err != nil {
			return fmt.Errorf("record migration %s %04d_%s: %w", key, m.version, m.name, err)
		}
		s.log.Info("applied migration", "projection", Projection, "scope", key, "version", m.version, "name", m.name)
	}
	return nil
}

var addColumnRE = regexp.MustCompile("^ALTER TABLE (\\S+) ADD COLUMN `?(\\w+)`? ")

// hasAddedColumn reports whether st is an ALTER TABLE ... ADD COLUMN of a
// column its table already has (on a cluster: the local table of a
// generation table, on the node at hand), which apply then skips. A
// generation created after a column was added has it from its CREATE; and
// on ClickHouse 18.16, ALTER ... ON CLUSTER of a replicated table runs on
// every replica of a shard, the second failing ("already exists") and the
// first one's distributed DDL queue left stuck, so it is best not sent when
// there is nothing to do.
func (s *Store) hasAddedColumn(ctx context.Context, st string) (bool, error) {
	m := addColumnRE.FindStringSubmatch(st)
	if m == nil {
		return false, nil
	}
	db, table := splitName(m[1])
	var n uint64
	err := s.conn.QueryRow(ctx, "SELECT count() FROM system.columns WHERE database = ? AND table = ? AND name = ?",
		db, s.cluster.localName(table), m[2]).Scan(&n)
	if err != nil {
		return false, fmt.Errorf("read the columns of %s: %w", m[1], err)
	}
	return n > 0, nil
}

// columnExists reports whether err is the server's refusal of an ALTER
// TABLE ... ADD COLUMN st because the column is there: 18.16 has no ADD
// COLUMN IF NOT EXISTS, so a Migrate running beside another (or after one
// that stopped before recording the migration) takes it as done.
func columnExists(st string, err error) bool {
	if !strings.HasPrefix(st, "ALTER TABLE ") || !strings.Contains(st, " ADD COLUMN ") {
		return false
	}
	var ex *clickhouse.Exception
	if errors.As(err, &ex) && ex.Code == 44 && strings.Contains(ex.Message, "already exists") {
		return true
	}
	// ON CLUSTER: the node's exception is in the message of the DDL task.
	return strings.Contains(err.Error(), "column with this name already exists")
}

// Generation is one row of the registry, as of its latest change: the
// shared generation type (Rows is -1: Store does not count rows, ReadModel
// does).
type Generation = projections.Generation

// Generations returns every generation of the projection, ascending, with
// its current state (latest registry row by version; exact before merges).
// Zero times are unset.
func (s *Store) Generations(ctx context.Context) ([]Generation, error) {
	rows, err := s.conn.Query(ctx, `SELECT generation, argMax(state, version), argMax(created_at, version),
		argMax(cutover_at, version), argMax(retired_at, version)
		FROM `+s.table("read_model_generations")+` WHERE read_model = ? GROUP BY generation ORDER BY generation`, Projection)
	if err != nil {
		return nil, fmt.Errorf("read generations of %s: %w", s.db, err)
	}
	defer rows.Close()
	var out []Generation
	for rows.Next() {
		var g Generation
		if err := rows.Scan(&g.Number, &g.State, &g.CreatedAt, &g.CutoverAt, &g.RetiredAt); err != nil {
			return nil, fmt.Errorf("read generations of %s: %w", s.db, err)
		}
		g.CreatedAt, g.CutoverAt, g.RetiredAt = unset(g.CreatedAt), unset(g.CutoverAt), unset(g.RetiredAt)
		g.Rows = -1
		out = append(out, g)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read generations of %s: %w", s.db, err)
	}
	return out, nil
}

func unset(t time.Time) time.Time {
	if t.Unix() <= 0 {
		return time.Time{}
	}
	return t.UTC()
}

func (s *Store) generation(ctx context.Context, n uint32) (Generation, error) {
	gens, err := s.Generations(ctx)
	if err != nil {
		return Generation{}, err
	}
	for _, g := range gens {
		if g.Number == n {
			return g, nil
		}
	}
	return Generation{}, fmt.Errorf("generation %d: %w", n, ErrNoGeneration)
}

// record inserts registry rows (one per generation) with a fresh version.
func (s *Store) record(ctx context.Context, gens ...Generation) error {
	b, err := s.conn.PrepareBatch(ctx, "INSERT INTO "+s.table("read_model_generations")+
		" (read_model, generation, state, created_at, cutover_at, retired_at, version)")
	if err != nil {
		return fmt.Errorf("update generation registry: %w", err)
	}
	version := uint64(time.Now().UnixNano())
	for _, g := range gens {
		if err := b.Append(Projection, g.Number, g.State, dt(g.CreatedAt), dt(g.CutoverAt), dt(g.RetiredAt), version); err != nil {
			_ = b.Abort()
			return fmt.Errorf("update generation registry: %w", err)
		}
	}
	if err := b.Send(); err != nil {
		return fmt.Errorf("update generation registry: %w", err)
	}
	return nil
}

// dt maps the zero time to the DateTime epoch ("unset").
func dt(t time.Time) time.Time {
	if t.IsZero() {
		return time.Unix(0, 0).UTC()
	}
	return t.UTC().Truncate(time.Second)
}

// Serving returns the number of the serving generation. It fails with
// ErrNoGeneration when none serves (before the first Migrate).
func (s *Store) Serving(ctx context.Context) (uint32, error) {
	gens, err := s.Generations(ctx)
	if err != nil {
		return 0, err
	}
	for _, g := range gens {
		if g.State == StateServing {
			return g.Number, nil
		}
	}
	return 0, fmt.Errorf("serving generation of %s: %w", s.db, ErrNoGeneration)
}

// NextGeneration returns the lowest number above every generation ever
// recorded (dropped ones included): the number a new rebuild should use.
func (s *Store) NextGeneration(ctx context.Context) (uint32, error) {
	gens, err := s.Generations(ctx)
	if err != nil {
		return 0, err
	}
	var n uint32
	for _, g := range gens {
		n = max(n, g.Number)
	}
	return n + 1, nil
}

// CreateGeneration creates the tables of generation n (empty, at this
// build's schema) and records it as building: from then on (within
// Config.GenerationRefresh) a following Sink writes every new event to it
// as well, while a replay fills it with the history. It fails with
// ErrExists when n was ever recorded (dropped numbers are not reused).
func (s *Store) CreateGeneration(ctx context.Context, n uint32) error {
	if n < 1 {
		return fmt.Errorf("create generation %d: want >= 1", n)
	}
	g, err := s.generation(ctx, n)
	switch {
	case err == nil:
		return fmt.Errorf("create generation %d (%s; numbers are never reused, see NextGeneration): %w", n, g.State, ErrExists)
	case !errors.Is(err, ErrNoGeneration):
		return err
	}
	if err := s.apply(ctx, "generation", n); err != nil {
		return err
	}
	if err := s.record(ctx, Generation{Number: n, State: StateBuilding, CreatedAt: time.Now().UTC()}); err != nil {
		return err
	}
	s.log.Info("created generation", "projection", Projection, "generation", n, "state", StateBuilding)
	return nil
}

// views lists the stable reader views and their definition on generation n.
// Every view deduplicates (FINAL), so every reader is exact before merges.
// One text for every release (current ones need the subquery's alias).
func (s *Store) views(n uint32) map[string]string {
	lines, orders, status := s.table(tableName("order_lines", n)), s.table(tableName("orders", n)), s.table(tableName("order_status", n))
	// The join of orders with their statuses reads, on a cluster, each shard's
	// own tables (every row of an order is on one shard): a Distributed table
	// inside the join of a Distributed query is refused by the server.
	ordersOwn := s.table(s.cluster.localName(tableName("orders", n)))
	statusOwn := s.table(s.cluster.localName(tableName("order_status", n)))
	return map[string]string{
		"order_lines": `SELECT order_id, line_no, order_number, kind, customer_id, country, channel, stock_code, description,
			quantity, unit_price, amount, placed_at, version FROM ` + lines + ` FINAL`,
		"order_totals": orderTotalsSQL(orders),
		"product_months": `SELECT placed_month, country, stock_code, description, last_placed, amount, quantity, documents
			FROM ` + s.table(tableName("product_months", n)) + ` FINAL`,
		"order_status": statusSQL(orders, status),
		"orders": `SELECT order_id, order_number, kind, customer_id, country, currency, total, line_count, placed_at,
			status, status_version AS version, updated_at
			FROM ` + orders + ` FINAL
			ANY LEFT JOIN (SELECT order_id, status, version AS status_version, updated_at FROM (` + statusSQL(ordersOwn, statusOwn) + `) AS order_fold) AS s
			USING order_id`,
	}
}

// OrdersSQL is the SELECT of the view orders on generation n (columns
// order_id, order_number, kind, customer_id, country, currency, total,
// line_count, placed_at, status, version, updated_at; one row per order
// placed, status the contract's fold, version that of its last event),
// exact before merges. For readers of one generation, e.g. a verifier.
func (s *Store) OrdersSQL(n uint32) string { return s.views(n)["orders"] }

// orderTotalsSQL is the SELECT of the view order_totals over the orders
// table (expression) orders: one row per order placed (FINAL: exact before
// merges), without the status join. The dashboard's order-level figures
// read it (Queries: Summary, Breakdown, HasCountry): a row per order
// instead of one per line, and an order's total is the exact sum of its
// line amounts (Rows.Add refuses any other), its line_count the number of
// its lines.
func orderTotalsSQL(orders string) string {
	return `SELECT order_id, order_number, kind, customer_id, country, channel, total, line_count, placed_at, version
			FROM ` + orders + ` FINAL`
}

var viewNames = []string{"order_lines", "orders", "order_status", "order_totals", "product_months"}

// viewAdded lists, per view, the columns its definition gained after its
// first release (channel: generation migration 0003). ensureViews rebuilds
// a view that lacks one even when it reads the right generation, so an
// upgraded install serves the new column without a cutover.
var viewAdded = map[string][]string{"order_lines": {"channel"}, "order_totals": {"channel"}}

// viewBase names the generation table whose name (<base>_g<N>) shows which
// generation a view reads.
var viewBase = map[string]string{"order_lines": "order_lines", "orders": "orders", "order_status": "order_status", "order_totals": "orders", "product_months": "product_months"}

// viewTarget returns the generation view name reads, 0 when the view is
// missing or lacks a column of viewAdded (it must be built again).
func (s *Store) viewTarget(ctx context.Context, name string) (uint32, error) {
	exists, err := s.exists(ctx, name)
	if err != nil || !exists {
		return 0, err
	}
	var create string
	if err := s.conn.QueryRow(ctx, "SHOW CREATE TABLE "+s.table(name)).Scan(&create); err != nil {
		return 0, fmt.Errorf("view %s.%s: %w", s.db, name, err)
	}
	for _, col := range viewAdded[name] {
		if !regexp.MustCompile(`\b` + col + `\b`).MatchString(create) {
			return 0, nil
		}
	}
	marker := viewBase[name] + "_g"
	i := strings.Index(create, marker)
	if i < 0 {
		return 0, nil
	}
	digits := create[i+len(marker):]
	end := strings.IndexFunc(digits, func(r rune) bool { return r < '0' || r > '9' })
	if end >= 0 {
		digits = digits[:end]
	}
	n, err := strconv.ParseUint(digits, 10, 32)
	if err != nil {
		return 0, nil
	}
	return uint32(n), nil
}

// exists reports whether the table or view name exists in the database.
func (s *Store) exists(ctx context.Context, name string) (bool, error) {
	var exists uint8
	if err := s.conn.QueryRow(ctx, "EXISTS TABLE "+s.table(name)).Scan(&exists); err != nil {
		return false, fmt.Errorf("view %s.%s: %w", s.db, name, err)
	}
	return exists == 1, nil
}

// ensureViews points every stable view at generation n, switching those
// that are missing or read another generation the way the server's dialect
// keeps its CutoverScope.
func (s *Store) ensureViews(ctx context.Context, n uint32) error {
	d, err := s.sqlDialect()
	if err != nil {
		return err
	}
	var stale []string
	for _, v := range viewNames {
		target, err := s.viewTarget(ctx, v)
		if err != nil {
			return err
		}
		if target != n {
			stale = append(stale, v)
		}
	}
	if len(stale) == 0 {
		return nil
	}
	if err := d.switchViews(ctx, s, stale, s.views(n)); err != nil {
		return fmt.Errorf("switch views to generation %d: %w", n, err)
	}
	s.log.Info("views switched", "projection", Projection, "generation", n, "cutover", d.cutover)
	return nil
}

// Cutover makes generation n the serving one: the registry first (n
// serving, the previous serving generation retired and kept for Rollback),
// then the stable views, switched as the server's CutoverScope says (all
// at once on 18.16, each view atomically on current releases). A cutover
// interrupted between the two is completed by the next Migrate or Cutover
// (the registry is the truth; views follow it). Cutting over to the serving
// generation only re-checks the views. Fails with ErrNoGeneration for an
// unknown or dropped n.
func (s *Store) Cutover(ctx context.Context, n uint32) error {
	gens, err := s.Generations(ctx)
	if err != nil {
		return err
	}
	var target *Generation
	var changes []Generation
	now := time.Now().UTC()
	for i := range gens {
		g := gens[i]
		if g.Number == n {
			target = &gens[i]
			continue
		}
		if g.State == StateServing {
			g.State, g.RetiredAt = StateRetired, now
			changes = append(changes, g)
		}
	}
	if target == nil || target.State == StateDropped {
		return fmt.Errorf("cutover to generation %d: %w", n, ErrNoGeneration)
	}
	if err := s.checkPerEventStatus(ctx, n); err != nil {
		return fmt.Errorf("cutover to generation %d: %w", n, err)
	}
	if target.State != StateServing {
		t := *target
		t.State, t.CutoverAt = StateServing, now
		changes = append(changes, t)
	}
	if len(changes) > 0 {
		if err := s.record(ctx, changes...); err != nil {
			return fmt.Errorf("cutover to generation %d: %w", n, err)
		}
	}
	if err := s.ensureViews(ctx, n); err != nil {
		return fmt.Errorf("cutover to generation %d: %w", n, err)
	}
	s.log.Info("cutover", "projection", Projection, "generation", n)
	return nil
}

// checkPerEventStatus fails with ErrOldGeneration when generation n's
// order_status table is not keyed by (order_id, version): the view's fold
// would read a table whose history merges have thrown away, and serve
// wrong statuses without an error.
func (s *Store) checkPerEventStatus(ctx context.Context, n uint32) error {
	var key string
	err := s.conn.QueryRow(ctx, "SELECT sorting_key FROM system.tables WHERE database = ? AND name = ?",
		s.db, s.cluster.localName(tableName("order_status", n))).Scan(&key)
	if err != nil {
		return fmt.Errorf("order_status table of generation %d: %w", n, err)
	}
	if strings.ReplaceAll(key, " ", "") != "order_id,version" {
		return fmt.Errorf("%w (sorting key %q)", ErrOldGeneration, key)
	}
	return nil
}

// Rollback serves again the generation the serving one replaced (the
// retired generation retired last) and retires the serving one (kept).
// Returns the generation now serving. Fails with ErrNoPrevious when no
// retired generation exists.
func (s *Store) Rollback(ctx context.Context) (uint32, error) {
	gens, err := s.Generations(ctx)
	if err != nil {
		return 0, err
	}
	var prev *Generation
	for i, g := range gens {
		if g.State == StateRetired && (prev == nil || !g.RetiredAt.Before(prev.RetiredAt)) {
			prev = &gens[i]
		}
	}
	if prev == nil {
		return 0, fmt.Errorf("rollback of %s: %w", s.db, ErrNoPrevious)
	}
	if err := s.Cutover(ctx, prev.Number); err != nil {
		return 0, fmt.Errorf("rollback: %w", err)
	}
	return prev.Number, nil
}

// DropGeneration drops the tables of generation n and records it dropped.
// It refuses the serving generation (ErrServing); a following Sink stops
// writing to it within Config.GenerationRefresh (a write that races the
// drop fails and is retried without it).
func (s *Store) DropGeneration(ctx context.Context, n uint32) error {
	g, err := s.generation(ctx, n)
	if err != nil {
		return err
	}
	if g.State == StateServing {
		return fmt.Errorf("drop generation %d: %w (cut over or roll back first)", n, ErrServing)
	}
	g.State = StateDropped
	if err := s.record(ctx, g); err != nil {
		return fmt.Errorf("drop generation %d: %w", n, err)
	}
	for _, base := range generationTables {
		if err := s.ddl(ctx, "DROP TABLE IF EXISTS "+s.table(tableName(base, n))); err != nil {
			return fmt.Errorf("drop generation %d: %w", n, err)
		}
	}
	s.log.Info("dropped generation", "projection", Projection, "generation", n)
	return nil
}

// writeTargets returns the generations a following Sink writes to: every
// one that is building, serving or retired.
func (s *Store) writeTargets(ctx context.Context) ([]uint32, error) {
	gens, err := s.Generations(ctx)
	if err != nil {
		return nil, err
	}
	var out []uint32
	for _, g := range gens {
		if g.State != StateDropped {
			out = append(out, g.Number)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("generations of %s: %w: %w", s.db, ErrNoGeneration, projections.ErrNotSetUp)
	}
	return out, nil
}
