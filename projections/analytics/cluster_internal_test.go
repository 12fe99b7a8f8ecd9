package analytics

import (
	"strings"
	"testing"
)

func TestClusterDDLRewrite(t *testing.T) {
	const create = "CREATE TABLE IF NOT EXISTS `db`.order_lines_g2 (\n    order_id String,\n    version UInt64\n) ENGINE = ReplacingMergeTree(version)\nPARTITION BY toYYYYMM(placed_at)\nORDER BY (order_id, line_no)"
	tests := []struct {
		name    string
		cluster string
		give    string
		want    []string
	}{
		{"one server leaves everything", "", create, []string{create}},
		{"database", "c", "CREATE DATABASE IF NOT EXISTS `db`", []string{"CREATE DATABASE IF NOT EXISTS `db` ON CLUSTER `c`"}},
		{"generation table: replicated local table and distributed table by order_id", "c", create, []string{
			"CREATE TABLE IF NOT EXISTS `db`.`order_lines_g2_local` ON CLUSTER `c` (\n    order_id String,\n    version UInt64\n) ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/db/order_lines_g2_local', '{replica}', version) PARTITION BY toYYYYMM(placed_at)\nORDER BY (order_id, line_no)",
			"CREATE TABLE IF NOT EXISTS `db`.`order_lines_g2` ON CLUSTER `c` AS `db`.`order_lines_g2_local` ENGINE = Distributed(`c`, `db`, `order_lines_g2_local`, cityHash64(order_id))",
		}},
		{"top-products rollup: distributed by stock code", "c", "CREATE TABLE IF NOT EXISTS `db`.product_months_g2 (\n    stock_code String\n) ENGINE = ReplacingMergeTree(lines_seen)\nORDER BY (placed_month, country, stock_code)", []string{
			"CREATE TABLE IF NOT EXISTS `db`.`product_months_g2_local` ON CLUSTER `c` (\n    stock_code String\n) ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/db/product_months_g2_local', '{replica}', lines_seen) ORDER BY (placed_month, country, stock_code)",
			"CREATE TABLE IF NOT EXISTS `db`.`product_months_g2` ON CLUSTER `c` AS `db`.`product_months_g2_local` ENGINE = Distributed(`c`, `db`, `product_months_g2_local`, cityHash64(stock_code))",
		}},
		{"registry: one replica on every node", "c", "CREATE TABLE IF NOT EXISTS `db`.`schema_migrations` (\n scope String\n ) ENGINE = ReplacingMergeTree ORDER BY (scope, version)", []string{
			"CREATE TABLE IF NOT EXISTS `db`.`schema_migrations` ON CLUSTER `c` (\n scope String\n ) ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/all/db/schema_migrations', '{replica}') ORDER BY (scope, version)",
		}},
		{"view", "c", "CREATE VIEW `db`.`orders_next` AS SELECT a AS b FROM x", []string{"CREATE VIEW `db`.`orders_next` ON CLUSTER `c` AS SELECT a AS b FROM x"}},
		{"rename", "c", "RENAME TABLE `db`.`a` TO `db`.`b`, `db`.`c` TO `db`.`a`", []string{"RENAME TABLE `db`.`a` TO `db`.`b`, `db`.`c` TO `db`.`a` ON CLUSTER `c`"}},
		{"drop generation table drops its local table", "c", "DROP TABLE IF EXISTS `db`.`orders_g3`", []string{
			"DROP TABLE IF EXISTS `db`.`orders_g3` ON CLUSTER `c`", "DROP TABLE IF EXISTS `db`.`orders_g3_local` ON CLUSTER `c`",
		}},
		{"drop view", "c", "DROP TABLE IF EXISTS `db`.`orders_old`", []string{"DROP TABLE IF EXISTS `db`.`orders_old` ON CLUSTER `c`"}},
		{"truncate generation table truncates its local table", "c", "TRUNCATE TABLE `db`.`orders_g3`", []string{"TRUNCATE TABLE `db`.`orders_g3_local` ON CLUSTER `c`"}},
		{"truncate on one server", "", "TRUNCATE TABLE `db`.`orders_g3`", []string{"TRUNCATE TABLE `db`.`orders_g3`"}},
		{"alter generation table alters its local and its distributed table", "c", "ALTER TABLE `db`.orders_g3 ADD COLUMN channel String DEFAULT '' AFTER country", []string{
			"ALTER TABLE `db`.`orders_g3_local` ON CLUSTER `c` ADD COLUMN channel String DEFAULT '' AFTER country",
			"ALTER TABLE `db`.`orders_g3` ON CLUSTER `c` ADD COLUMN channel String DEFAULT '' AFTER country",
		}},
		{"alter on one server", "", "ALTER TABLE `db`.orders_g3 ADD COLUMN channel String", []string{"ALTER TABLE `db`.orders_g3 ADD COLUMN channel String"}},
		{"insert runs on the node at hand", "c", "INSERT INTO `db`.t (a) SELECT a FROM `db`.u", []string{"INSERT INTO `db`.t (a) SELECT a FROM `db`.u"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := clusterDDL{name: tc.cluster}.rewrite(tc.give)
			if strings.Join(got, "\n;\n") != strings.Join(tc.want, "\n;\n") {
				t.Errorf("rewrite =\n%s\nwant\n%s", strings.Join(got, "\n;\n"), strings.Join(tc.want, "\n;\n"))
			}
		})
	}
}

// TestClusterDDLCoversEveryMigration: every CREATE TABLE of the embedded
// migrations is a ReplacingMergeTree the rewrite recognises (a new engine
// would otherwise be created on one node only).
func TestClusterDDLCoversEveryMigration(t *testing.T) {
	c := clusterDDL{name: "c"}
	for _, scope := range []string{"database", "generation"} {
		ms, err := loadMigrations(scope)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range ms {
			for _, st := range statements((&Store{db: "db"}).expand(m.sql, 7)) {
				for _, out := range c.rewrite(st) {
					if !strings.HasPrefix(out, "INSERT ") && !strings.Contains(out, " ON CLUSTER `c`") {
						t.Errorf("%s %04d_%s: statement not run on the cluster:\n%s", scope, m.version, m.name, out)
					}
				}
			}
		}
	}
}
