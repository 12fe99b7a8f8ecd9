package analytics

import (
	"fmt"
	"regexp"
	"strings"
)

// clusterDDL turns the package's single-node DDL into its form on a
// ClickHouse cluster (remote_servers entry name, Config.Cluster). The zero
// value (no cluster) returns every statement unchanged, so one text of
// migrations and views serves a single server, chDB and a cluster.
//
// On a cluster, every statement runs ON CLUSTER (each node executes it from
// the distributed DDL queue; the statement returns once every node did, or
// fails after the server's distributed_ddl_task_timeout while the nodes that
// were down catch up when they return), and:
//
//   - a generation table X_gN (order_lines, orders, order_status) becomes a
//     ReplicatedReplacingMergeTree X_gN_local on every node, replicated
//     within its shard (ZooKeeper path /clickhouse/tables/{shard}/DB/X_gN_local,
//     replica {replica}: the node's macros), plus a Distributed table X_gN
//     over them sharded by cityHash64(order_id) (shardingKey). Every row of
//     an order — and every redelivered copy of a row — lands on one shard,
//     so FINAL (which deduplicates within a shard) and GROUP BY order_id keep
//     the reader views exact before merges, as on one server. The
//     top-products rollup product_months_gN has no order: it is sharded by
//     cityHash64(stock_code), so every version of one of its keys (month,
//     country, stock code) lands on one shard as well.
//   - every other table (schema_migrations, the generation registry) is a
//     ReplicatedReplacingMergeTree with one replica on every node (path
//     /clickhouse/tables/all/DB/X): any node reads the whole registry.
//   - ALTER TABLE of a generation table alters its local table, then the
//     Distributed table (which keeps a column list of its own);
//   - views, RENAME and DROP run ON CLUSTER; DROP of a generation table
//     drops its local table as well; TRUNCATE of a generation table
//     truncates its local tables (a Distributed table holds no rows).
//
// Writers insert into X_gN; with internal_replication=true in remote_servers
// the Distributed table writes each shard's rows to one live replica, which
// replicates to the other (an insert survives one replica of a shard down).
type clusterDDL struct {
	name string // "" = single server
}

var (
	createTableRE = regexp.MustCompile(`(?s)^CREATE TABLE IF NOT EXISTS (\S+)\s*(\(.*\))\s*ENGINE\s*=\s*ReplacingMergeTree(\((\w+)\))?\s*(.*)$`)
	generationRE  = regexp.MustCompile(`_g[0-9]+$`)
	dropTableRE   = regexp.MustCompile(`^DROP TABLE IF EXISTS (\S+)$`)
	truncateRE    = regexp.MustCompile(`^TRUNCATE TABLE (\S+)$`)
	alterRE       = regexp.MustCompile(`(?s)^ALTER TABLE (\S+) (.*)$`)
)

// splitName splits "`db`.`t`" or "`db`.t" into db and t.
func splitName(q string) (db, table string) {
	db, table, _ = strings.Cut(strings.ReplaceAll(q, "`", ""), ".")
	return db, table
}

func quoted(db, table string) string { return "`" + db + "`.`" + table + "`" }

// localName returns the name of the replicated table under the
// Distributed table of generation table name (name itself on one server).
func (c clusterDDL) localName(name string) string {
	if c.name == "" || !generationRE.MatchString(name) {
		return name
	}
	return name + "_local"
}

// shardingKey returns the sharding expression of generation table name
// (X_gN) on a cluster: every row of one key of the table, and every copy of
// it, on one shard.
func shardingKey(name string) string {
	if generationRE.ReplaceAllString(name, "") == "product_months" {
		return "cityHash64(stock_code)"
	}
	return "cityHash64(order_id)"
}

// rewrite returns the statements that do st on the cluster (st alone on one
// server). It recognises the statements this package issues: CREATE
// DATABASE / TABLE (ReplacingMergeTree) / VIEW IF NOT EXISTS, DROP TABLE IF
// EXISTS, RENAME TABLE, ALTER TABLE; any other statement (INSERT ... SELECT) is
// returned unchanged and runs on the node at hand.
func (c clusterDDL) rewrite(st string) []string {
	if c.name == "" {
		return []string{st}
	}
	on := " ON CLUSTER `" + c.name + "`"
	switch {
	case strings.HasPrefix(st, "CREATE DATABASE "):
		return []string{st + on}
	case strings.HasPrefix(st, "CREATE TABLE IF NOT EXISTS "):
		m := createTableRE.FindStringSubmatch(st)
		if m == nil {
			return []string{st} // not a ReplacingMergeTree table: leave it to the test of every migration
		}
		db, table := splitName(m[1])
		columns, version, rest := m[2], m[4], m[5]
		args := ""
		if version != "" {
			args = ", " + version
		}
		if !generationRE.MatchString(table) {
			return []string{fmt.Sprintf("CREATE TABLE IF NOT EXISTS %s%s %s ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/all/%s/%s', '{replica}'%s) %s",
				quoted(db, table), on, columns, db, table, args, rest)}
		}
		local := c.localName(table)
		return []string{
			fmt.Sprintf("CREATE TABLE IF NOT EXISTS %s%s %s ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/%s/%s', '{replica}'%s) %s",
				quoted(db, local), on, columns, db, local, args, rest),
			fmt.Sprintf("CREATE TABLE IF NOT EXISTS %s%s AS %s ENGINE = Distributed(`%s`, `%s`, `%s`, %s)",
				quoted(db, table), on, quoted(db, local), c.name, db, local, shardingKey(table)),
		}
	case strings.HasPrefix(st, "CREATE VIEW "), strings.HasPrefix(st, "CREATE OR REPLACE VIEW "):
		head, def, _ := strings.Cut(st, " AS ")
		return []string{head + on + " AS " + def}
	case strings.HasPrefix(st, "RENAME TABLE "):
		return []string{st + on}
	case dropTableRE.MatchString(st):
		name := dropTableRE.FindStringSubmatch(st)[1]
		db, table := splitName(name)
		out := []string{st + on}
		if local := c.localName(table); local != table {
			out = append(out, "DROP TABLE IF EXISTS "+quoted(db, local)+on)
		}
		return out
	case alterRE.MatchString(st):
		m := alterRE.FindStringSubmatch(st)
		db, table := splitName(m[1])
		out := []string{"ALTER TABLE " + quoted(db, c.localName(table)) + on + " " + m[2]}
		if local := c.localName(table); local != table {
			out = append(out, "ALTER TABLE "+quoted(db, table)+on+" "+m[2]) // the Distributed table's own columns
		}
		return out
	case truncateRE.MatchString(st):
		db, table := splitName(truncateRE.FindStringSubmatch(st)[1])
		return []string{"TRUNCATE TABLE " + quoted(db, c.localName(table)) + on}
	}
	return []string{st}
}
