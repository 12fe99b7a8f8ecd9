// Package analytics is the ClickHouse read model of orders and the
// dashboard queries over it.
//
// # Data flow
//
// The Sink (a consumers.Sink) turns order events into rows of three tables
// per generation n, inserted with one batch per table per Write, and keeps
// a fourth, a rollup, from them:
//
//   - order_lines_g<n>: one row per line of order.placed (order, line number,
//     kind, customer, country, channel ("" = not known), product, quantity,
//     unit price, amount = quantity × unit price, placed time, version);
//   - orders_g<n>: one row per order.placed (document fields and total);
//   - order_status_g<n>: one row per event, keyed by order and version, with
//     the status it moves the order to (schemas.StatusOf) and its amount; the
//     view order_status folds an order's rows into its status (schemas.Fold:
//     a partial refund of a sale leaves it paid or shipped).
//   - product_months_g<n>: per Europe/London month, country and stock code,
//     the figures of TopProducts, recomputed after each Write from the
//     deduplicated lines of the months the Write's lines fall in, versioned
//     by the number of lines of the key read (migration generation/0002 says
//     why that is exact under redelivery, replay and concurrent writers).
//
// Status changes live in their own table, joined at read time (the orders
// view), so the Sink never needs a row of an earlier event: an order.paid
// needs nothing of its order.placed, events of one order may land in
// different batches, and a replay writes each event on its own. (The
// rollup's recomputation reads lines, on the server, in its INSERT ...
// SELECT; the Sink holds nothing of it.)
//
// # Reads
//
// The dashboard's figures read as few rows as their definition allows
// (Queries): Summary, Breakdown and HasCountry one row per order (the view
// order_totals over orders_g<n>; an order's total is the sum of its line
// amounts), TopProducts the rollup for whole months and order_lines_g<n>
// only for the days of a range outside whole months. The figures are those
// of the deduplicated lines (TestDashboardExactUnderRedelivery compares
// them).
//
// # Guarantees
//
//   - Idempotency: every table is a ReplacingMergeTree(version) keyed by
//     (order_id, line_no), order_id or (order_id, version), where version is the event's
//     aggregate_version (never a Kafka offset). A record written twice
//     (redelivery, restart, replay from offset zero) gives identical rows
//     that collapse at merge time, and every reader deduplicates before
//     merges: the stable views and Queries.OnGeneration read with FINAL. FINAL
//     rather than argMax/GROUP BY in each query: the exactness lives in one
//     place, the views, which every reader (CLI, API, Grafana, ad-hoc SQL)
//     goes through, and it works on ClickHouse 18.16 and current releases
//     alike. Rows of one key share placed_at, so twins always meet in the same
//     monthly partition (FINAL deduplicates per partition).
//     The rollup product_months_g<n> is a ReplacingMergeTree(lines_seen)
//     keyed by (month, country, stock code): a row recomputed from more lines
//     replaces one from fewer, and its readers deduplicate with FINAL too.
//     TopProducts reads a generation's tables (with FINAL), not the views:
//     on 18.16 a condition on a view does not reach the table inside, so a
//     view would read every partition.
//   - Exact money: Decimal(18,3) columns (unit prices have at most 3
//     decimals; a line amount, an integer times such a price, keeps scale 3),
//     sums are Decimal(38,3); Go values are shopspring decimal.Decimal, never
//     float64. Money with more decimals is rejected, not rounded.
//   - Times: DateTime('UTC'), whole seconds since the Unix epoch (sub-second
//     parts are truncated). Days and months of the dashboards are
//     Europe/London calendar days of placed_at.
//   - Guests: customer_id is the empty string (not Nullable) for documents
//     without a customer; customer counts skip it.
//   - Failures: an event that can never be projected (unknown type or
//     version, bad payload, another currency, money beyond the columns) is
//     returned in a *consumers.RejectedError (the runtime sends it to the
//     DLQ); any ClickHouse error is returned as transient: the runtime retries
//     the batch, and the connection pool redials by itself once the server
//     is back.
//
// # Generations
//
// The physical tables carry a generation suffix; read_model_generations
// records each generation's state (building, serving, retired, dropped) and
// the stable views order_lines, orders, order_status, order_totals and
// product_months read the serving one. Store.CreateGeneration, Cutover (views switched as CutoverScope says:
// one multi-table RENAME TABLE on 18.16, CREATE OR REPLACE VIEW per view on
// current releases), Rollback and DropGeneration manage them; Migrate creates
// generation 1 as serving on first run. A Sink following the registry
// (Config.Generation 0) writes to every generation not dropped — building
// ones so that a rebuild misses nothing that arrives during it, retired ones
// so that a rollback target stays current.
//
// # Schema
//
// Versioned migrations (migrations/database/*.sql and, per generation,
// migrations/generation/*.sql) are applied by Store.Migrate, by `orderstream
// analytics migrate` and by the Sink before its first write, and recorded in
// schema_migrations. The SQL is one text for ClickHouse 18.16 and current
// releases: what 18.16 has (no DateTime64 or LowCardinality; every insert is
// a batch with its column list) and current releases still parse (no
// keyword as an unquoted column name, an alias on every joined subquery).
// The one difference, the cutover, lives in dialect.go, chosen from the
// server's version at the first use of a Store.
package analytics
