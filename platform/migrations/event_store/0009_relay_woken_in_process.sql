-- A service's own stores wake its relay in memory while it leads there, and turn
-- the notification off for their statement with this setting: every transaction
-- that notifies holds one cluster-wide lock until its commit is flushed, so
-- notifying commits cannot share a flush (decision 0025). Every other writer
-- still notifies.
CREATE OR REPLACE FUNCTION notify_events_appended() RETURNS trigger
    LANGUAGE plpgsql AS
$$
BEGIN
    IF current_setting('shop.relay_woken_in_process', true) IS DISTINCT FROM 'on' THEN
        PERFORM pg_notify('events_appended', '');
    END IF;
    RETURN NULL;
END
$$;
