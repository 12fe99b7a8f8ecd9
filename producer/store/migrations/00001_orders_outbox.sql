-- +goose Up
CREATE TABLE orders (
    order_id      text        PRIMARY KEY,
    order_number  text        NOT NULL UNIQUE,           -- natural key (InvoiceNo for imports)
    kind          text        NOT NULL CHECK (kind IN ('sale', 'credit_note', 'adjustment')),
    status        text        NOT NULL,
    customer_id   text,                                  -- NULL for guest documents
    country       text        NOT NULL,
    currency      char(3)     NOT NULL,
    total         numeric(20, 6) NOT NULL,               -- exact, in currency
    paid          numeric(20, 6) NOT NULL DEFAULT 0,
    refunded      numeric(20, 6) NOT NULL DEFAULT 0,
    placed_at     timestamptz NOT NULL,                  -- business time, UTC
    version       bigint      NOT NULL CHECK (version >= 1), -- aggregate_version of the last event
    updated_at    timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE order_lines (
    order_id     text          NOT NULL REFERENCES orders (order_id),
    line_no      integer       NOT NULL,                 -- 1..n within the order
    source_line  integer,                                -- line number in the imported file
    stock_code   text          NOT NULL,
    description  text          NOT NULL,
    quantity     bigint        NOT NULL,                 -- units
    unit_price   numeric(20, 6) NOT NULL,                -- per unit, in the order's currency
    invoiced_at  timestamptz   NOT NULL,
    PRIMARY KEY (order_id, line_no)
);

-- The transactional outbox. The relay streams INSERTs of this table only
-- (publication orderstream_outbox) and never updates rows; the purge deletes
-- rows older than the retention once they were relayed.
CREATE TABLE outbox (
    id                bigserial   PRIMARY KEY,
    event_id          uuid        NOT NULL UNIQUE,
    aggregate_type    text        NOT NULL,
    aggregate_id      text        NOT NULL,
    aggregate_version bigint      NOT NULL,
    event_type        text        NOT NULL,
    schema_version    integer     NOT NULL,
    occurred_at       timestamptz NOT NULL,
    recorded_at       timestamptz NOT NULL DEFAULT now(),
    tx_id             xid8        NOT NULL DEFAULT pg_current_xact_id(), -- poll mode's visibility watermark
    traceparent       text,
    envelope          json        NOT NULL,              -- the serialized, schema-validated envelope, byte for byte
    UNIQUE (aggregate_id, aggregate_version)
);
CREATE INDEX outbox_tx_id_id ON outbox (tx_id, id);
CREATE INDEX outbox_recorded_at ON outbox (recorded_at);

-- +goose Down
DROP TABLE outbox;
DROP TABLE order_lines;
DROP TABLE orders;
