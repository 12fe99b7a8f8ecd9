-- The top-products rollup of one generation: per Europe/London calendar
-- month of placed_at (placed_month), country and stock code, the figures
-- of TopProducts over that month's lines. TopProducts reads it for whole
-- months and order_lines only for the days of a range that do not make a
-- whole month, so its cost follows the months and products, not the lines
-- (ARCHITECTURE.md "Dashboard queries that scale").
--
-- Exact under redelivery and replay: nothing here is added to. The Sink,
-- after inserting a batch's lines, recomputes every month those lines fall
-- in from order_lines FINAL (deduplicated) in one INSERT ... SELECT; each
-- row carries as version (lines_seen) the number of lines of its key
-- (month, country, stock code) that the SELECT read. An order's lines never
-- change (they come from its order.placed, always its version 1), so the
-- lines of a key only grow, and a computation that read more of them read a
-- superset of one that read fewer (the same lines when as many):
-- ReplacingMergeTree(lines_seen) keeps, per key, the row of the most
-- complete computation, whichever writer (daemon, rebuild, redelivery) made
-- it and in whatever order they finished; readers deduplicate with FINAL.
-- The rows of one key share placed_month, hence one partition.
--   description: argMax(description, (placed_at, description)) over the lines;
--   last_placed: max(placed_at) over the lines (to combine descriptions);
--   amount, quantity: sums over the lines (GBP, exact; units, net);
--   documents: distinct orders with a line of the code (an order has one
--   month and one country, so documents add up across rows).
CREATE TABLE IF NOT EXISTS ${db}.product_months_${gen} (
    placed_month Date,
    country      String,
    stock_code   String,
    description  String,
    last_placed  DateTime('UTC'),
    amount       Decimal(38, 3),
    quantity     Int64,
    documents    UInt64,
    lines_seen   UInt64
) ENGINE = ReplacingMergeTree(lines_seen)
PARTITION BY toYYYYMM(placed_month)
ORDER BY (placed_month, country, stock_code);

-- Every month of the lines already there (none in a new generation): a
-- generation created by an earlier release gets its rollup here. Run again,
-- it computes the same rows.
INSERT INTO ${db}.product_months_${gen}
    (placed_month, country, stock_code, description, last_placed, amount, quantity, documents, lines_seen)
SELECT toStartOfMonth(placed_at, 'Europe/London') AS pm, country AS c, stock_code AS sc,
    argMax(description, (placed_at, description)), max(placed_at), sum(amount), sum(quantity), uniqExact(order_id), count()
FROM ${db}.order_lines_${gen} FINAL
GROUP BY pm, c, sc;
