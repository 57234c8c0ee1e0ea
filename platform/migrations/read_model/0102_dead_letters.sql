-- Events that a consumer's handler kept failing on, parked after the consumer's
-- last attempt so that the events behind them could go on. The envelope is kept
-- whole, so a retry applies exactly what was delivered.
CREATE TABLE dead_letters
(
    id              bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    consumer        text        NOT NULL,
    stream          text        NOT NULL,
    stream_seq      bigint      NOT NULL,
    event_id        text        NOT NULL,
    event_type      text        NOT NULL,
    aggregate_type  text        NOT NULL,
    aggregate_id    text        NOT NULL,
    sequence        bigint      NOT NULL,
    envelope        jsonb       NOT NULL,
    error           text        NOT NULL,
    attempts        integer     NOT NULL,
    first_failed_at timestamptz NOT NULL,
    parked_at       timestamptz NOT NULL DEFAULT now(),
    UNIQUE (consumer, event_id)
);
