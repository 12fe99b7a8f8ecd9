-- Tables of one generation (${gen} = g1, g2, ...). All ReplacingMergeTree:
-- a row written again (same key) by a redelivered or replayed event
-- collapses with its twin at merge time; until then every reader
-- deduplicates with FINAL (the stable views do it for everyone).
-- Money: Decimal(18,3), exact, GBP; sums are Decimal(38,3).
-- Times: DateTime('UTC'), whole seconds since the Unix epoch.
-- customer_id is '' for guest documents (no Nullable: uniqExactIf(customer_id,
-- customer_id != '') counts customers, and every row has a value).
-- Partitions by placed month: all rows of one key share placed_at, so
-- twins always meet in the same partition (FINAL works per partition).

-- One row per line of order.placed.
CREATE TABLE IF NOT EXISTS ${db}.order_lines_${gen} (
    order_id     String,
    line_no      UInt32,
    order_number String,
    kind         String,
    customer_id  String,
    country      String,
    channel      String DEFAULT '', -- 0003_channel adds it to generations created before it
    stock_code   String,
    description  String,
    quantity     Int64,
    unit_price   Decimal(18, 3),
    amount       Decimal(18, 3),
    placed_at    DateTime('UTC'),
    version      UInt64
) ENGINE = ReplacingMergeTree(version)
PARTITION BY toYYYYMM(placed_at)
ORDER BY (order_id, line_no);

-- One row per order, from order.placed.
CREATE TABLE IF NOT EXISTS ${db}.orders_${gen} (
    order_id     String,
    order_number String,
    kind         String,
    customer_id  String,
    country      String,
    channel      String DEFAULT '', -- 0003_channel adds it to generations created before it
    currency     String,
    total        Decimal(18, 3),
    line_count   UInt32,
    placed_at    DateTime('UTC'),
    version      UInt64
) ENGINE = ReplacingMergeTree(version)
PARTITION BY toYYYYMM(placed_at)
ORDER BY order_id;

-- One row per event: the status it moves the order to (a refund row: refunded,
-- which it reaches only when the contract's fold says so). Keyed by order and
-- version: every event of an order is kept (a redelivered twin collapses);
-- the view order_status folds them into the order's status. Not partitioned:
-- all rows of one order must meet in one partition.
CREATE TABLE IF NOT EXISTS ${db}.order_status_${gen} (
    order_id   String,
    status     String,
    event_type String,
    amount     Decimal(18, 3),
    updated_at DateTime('UTC'),
    version    UInt64
) ENGINE = ReplacingMergeTree(version)
ORDER BY (order_id, version);
