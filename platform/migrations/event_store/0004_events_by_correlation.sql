-- Finds every event of one request (GET /api/admin/events?correlation_id=X, which
-- the gateway's trace fans out to) without reading the whole log.
CREATE INDEX events_by_correlation ON events ((metadata ->> 'correlation_id'));
