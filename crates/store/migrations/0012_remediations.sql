-- Patchwell schema 12: findings remediated. When a host is no longer
-- affected by an advisory it was affected by, the server moves the pair's
-- first detection here with when it was fixed, its class and its deadline
-- as they stood then; the month's report reads mean time to remediate and
-- deadlines met per class from these rows. A finding that comes back is
-- detected afresh. Rows outlive their host, as history.
CREATE TABLE remediations (
    host_id TEXT NOT NULL,
    advisory_id TEXT NOT NULL,
    class TEXT NOT NULL,
    first_seen BIGINT NOT NULL,
    due BIGINT NOT NULL,
    fixed_at BIGINT NOT NULL
);
CREATE INDEX remediations_by_fixed_at ON remediations (fixed_at);
