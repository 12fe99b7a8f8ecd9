-- +goose Up
-- The CDC relay's own state (producer/relay).
--
-- relay_checkpoint: one row per replication slot, written by the WAL relay
-- BEFORE it confirms a position to PostgreSQL, so confirmed_lsn is never
-- behind the slot's confirmed_flush_lsn. A slot that is missing, or whose
-- confirmed_flush_lsn is ahead of confirmed_lsn, was dropped or moved by
-- someone else: the relay refuses to start (events may have been skipped).
CREATE TABLE relay_checkpoint (
    slot_name         text        PRIMARY KEY,
    -- creating: the slot is being created (a crash here leaves nothing relayed);
    -- backfill: rows committed before the slot existed are being published;
    -- streaming: the slot is the source of truth.
    state             text        NOT NULL CHECK (state IN ('creating', 'backfill', 'streaming')),
    confirmed_lsn     pg_lsn,                 -- end LSN of the last transaction fully acked by Kafka
    commit_time       timestamptz,            -- commit time of that transaction (purge and lag use it)
    backfill_snapshot pg_snapshot,            -- the slot's exported snapshot: rows visible in it are backfilled
    updated_at        timestamptz NOT NULL DEFAULT now()
);

-- relay_poll_cursor: the poll relay's position (tx_id, id), written after
-- Kafka acked every row up to it.
CREATE TABLE relay_poll_cursor (
    name       text        PRIMARY KEY,
    tx_id      xid8        NOT NULL,
    id         bigint      NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- +goose Down
DROP TABLE relay_poll_cursor;
DROP TABLE relay_checkpoint;
