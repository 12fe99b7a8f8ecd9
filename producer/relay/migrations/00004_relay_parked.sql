-- +goose Up
-- relay_parked_events: outbox events the relay did not produce, kept whole.
-- reason 'oversized': its Kafka record is larger than the topic accepts
-- (max.message.bytes, or the producer's 1 MiB batch limit), so no retry can
-- ever relay it; 'behind_oversized': a later event of an order with an
-- oversized one, held back so that no read model sees the order without it.
-- Written by `orderstream relay --park-oversized` before the relay moves past
-- the event; listed by `orderstream relay parked`. Never purged.
CREATE TABLE relay_parked_events (
    event_id          text        PRIMARY KEY,
    outbox_id         bigint      NOT NULL,
    aggregate_id      text        NOT NULL,
    aggregate_version bigint      NOT NULL,
    event_type        text        NOT NULL,
    relay_position    text        NOT NULL,
    size_bytes        integer     NOT NULL,  -- key + value + headers of the record
    limit_bytes       integer     NOT NULL,  -- the largest the topic accepted then
    reason            text        NOT NULL CHECK (reason IN ('oversized', 'behind_oversized')),
    envelope          text        NOT NULL,  -- outbox.envelope, byte for byte
    parked_at         timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX relay_parked_events_aggregate ON relay_parked_events (aggregate_id);

-- +goose Down
DROP TABLE relay_parked_events;
