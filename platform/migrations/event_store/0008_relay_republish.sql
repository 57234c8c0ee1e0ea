-- A request to republish the service's whole log into its stream (`shop relay
-- republish`), and its progress. Any replica records the request; only the relay
-- that holds the advisory lock carries it out and moves it on (docs/decisions/0013).
CREATE TABLE relay_republish
(
    stream                 text PRIMARY KEY,
    status                 text        NOT NULL
        CHECK (status IN ('REQUESTED', 'RUNNING', 'DONE')),
    requested_at           timestamptz NOT NULL DEFAULT now(),
    started_at             timestamptz,
    finished_at            timestamptz,
    -- The last committed event when the republish started: it is done once the
    -- relay's checkpoint has reached it.
    target_transaction_id  xid8,
    target_global_position bigint,
    -- Events of the log up to the target, and how many of them the stream holds:
    -- those it already held in order, and those republished since.
    total                  bigint      NOT NULL DEFAULT 0,
    published              bigint      NOT NULL DEFAULT 0,
    -- Whether the stream held something other than a prefix of the log and was
    -- deleted and created empty first.
    recreated              boolean     NOT NULL DEFAULT false
);
