-- Per consumer and source stream: the last JetStream sequence applied. Written in
-- the same transaction as the read-model rows it covers.
CREATE TABLE consumer_checkpoints
(
    consumer    text        NOT NULL,
    stream      text        NOT NULL,
    stream_seq  bigint      NOT NULL,
    applied     bigint      NOT NULL DEFAULT 0,
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (consumer, stream)
);

-- Per consumer and aggregate: the last event sequence applied. An event at or
-- below it is a redelivery and is skipped.
CREATE TABLE consumer_offsets
(
    consumer       text   NOT NULL,
    aggregate_type text   NOT NULL,
    aggregate_id   text   NOT NULL,
    last_sequence  bigint NOT NULL,
    PRIMARY KEY (consumer, aggregate_type, aggregate_id)
);
