-- +goose Up
-- Idempotency keys of commands (the HTTP Idempotency-Key header, IETF
-- draft-ietf-httpapi-idempotency-key-header). A key is written in the same
-- transaction as the command's effect (store.Repository.SaveKeyed), so a key
-- exists exactly when its command committed; the primary key makes a second,
-- concurrent use of the key fail instead of writing a second effect.
-- Rows older than the retention are deleted by store.PurgeKeys.
CREATE TABLE idempotency_keys (
    scope        text        NOT NULL,              -- who used the key (the caller's subject); keys of two callers never meet
    key          text        NOT NULL,              -- the client's key, 1..255 characters
    fingerprint  bytea       NOT NULL,              -- SHA-256 of the command (name, order, normalized body)
    command      text        NOT NULL,              -- place, pay, ship, cancel, refund
    order_id     text        NOT NULL,
    version      bigint      NOT NULL,              -- the order's version the command committed
    status       text        NOT NULL,              -- the order's status after it
    created_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (scope, key)
);
CREATE INDEX idempotency_keys_created_at ON idempotency_keys (created_at);

-- +goose Down
DROP TABLE idempotency_keys;
