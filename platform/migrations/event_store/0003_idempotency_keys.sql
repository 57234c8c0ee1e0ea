-- The first answer to each Idempotency-Key, so that a repeat returns it and writes
-- nothing. A row without a status is a request still in progress.
CREATE TABLE idempotency_keys
(
    key           text PRIMARY KEY,
    method        text        NOT NULL,
    path          text        NOT NULL,
    request_body  bytea       NOT NULL,
    status        smallint,
    content_type  text,
    response_body bytea,
    created_at    timestamptz NOT NULL DEFAULT now()
);
