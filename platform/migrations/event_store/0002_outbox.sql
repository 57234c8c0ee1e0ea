-- The events table is the outbox. postgres-es names its insert columns, so these
-- columns fill themselves in.
--
-- global_position is handed out at insert, not at commit, so a reader that only
-- asks for "position > last" skips rows that commit late. The relay therefore
-- reads in (transaction_id, global_position) order and only below the oldest
-- running transaction (pg_snapshot_xmin), where nothing can still appear.
ALTER TABLE events
    ADD COLUMN global_position bigint GENERATED ALWAYS AS IDENTITY,
    ADD COLUMN transaction_id  xid8        NOT NULL DEFAULT pg_current_xact_id(),
    ADD COLUMN recorded_at     timestamptz NOT NULL DEFAULT now();

CREATE UNIQUE INDEX events_relay_order ON events (transaction_id, global_position);

-- Wakes the relay as soon as a transaction that appended events commits.
CREATE FUNCTION notify_events_appended() RETURNS trigger
    LANGUAGE plpgsql AS
$$
BEGIN
    PERFORM pg_notify('events_appended', '');
    RETURN NULL;
END
$$;

CREATE TRIGGER events_appended
    AFTER INSERT ON events
    FOR EACH STATEMENT EXECUTE FUNCTION notify_events_appended();

-- How far the relay has published, stored only after JetStream acknowledged it.
CREATE TABLE relay_checkpoints
(
    stream          text PRIMARY KEY,
    transaction_id  xid8        NOT NULL,
    global_position bigint      NOT NULL,
    published       bigint      NOT NULL DEFAULT 0,
    updated_at      timestamptz NOT NULL DEFAULT now()
);
