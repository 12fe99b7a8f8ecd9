-- The order's sales channel (order.placed v2 channel: web, phone,
-- marketplace, store; '' when the event does not say), beside country on
-- the order and on each of its lines, so the order-level dashboard figures
-- (order_totals) and top products can be filtered and broken down by it.
-- Rows written before this migration read '' (the channel of their events
-- was not kept): rebuild the read model into a new generation to fill it.
-- Generations created since have the column from 0001_tables; Store.apply
-- skips an ADD COLUMN whose column the table has (ClickHouse 18.16 has no
-- ADD COLUMN IF NOT EXISTS) and takes "column already exists" (a concurrent
-- Migrate) as done.
ALTER TABLE ${db}.orders_${gen} ADD COLUMN channel String DEFAULT '' AFTER country;
ALTER TABLE ${db}.order_lines_${gen} ADD COLUMN channel String DEFAULT '' AFTER country;
