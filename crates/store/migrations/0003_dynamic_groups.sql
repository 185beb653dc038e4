-- Patchwell schema 3: dynamic groups, each a host query (patchwell-core's
-- query language), evaluated when asked.

CREATE TABLE dynamic_groups (
    name TEXT PRIMARY KEY,
    query TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
