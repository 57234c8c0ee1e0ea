-- Per projection: the version of its read model that serves queries (the tables in
-- `public`), and the rebuild in progress, if any. A rebuild writes version
-- `rebuild_target` into schema `rebuild_<name>` and, once it has caught up, takes
-- the place of the live tables in one transaction (docs/decisions/0010).
CREATE TABLE projection_versions
(
    name               text PRIMARY KEY,
    version            integer     NOT NULL DEFAULT 1,
    rebuild_target     integer,
    rebuild_started_at timestamptz,
    switched_at        timestamptz,
    CONSTRAINT a_rebuild_has_a_start CHECK ((rebuild_target IS NULL) = (rebuild_started_at IS NULL)),
    CONSTRAINT a_rebuild_moves_forward CHECK (rebuild_target > version)
);
