-- Patchwell schema 9: each rollout host's packages and signed job move out
-- of rollout_hosts into a table of their own. They are kilobytes a host;
-- the lines (ring, progress, step, times) are what planning, progress
-- counts and the console read for every host, many times a minute, and
-- must not have to step over them.
CREATE TABLE rollout_payloads (
    rollout TEXT NOT NULL,
    host_id TEXT NOT NULL,
    packages TEXT NOT NULL,
    job TEXT,
    PRIMARY KEY (rollout, host_id),
    FOREIGN KEY (rollout, host_id) REFERENCES rollout_hosts (rollout, host_id) ON DELETE CASCADE
);
INSERT INTO rollout_payloads (rollout, host_id, packages, job)
    SELECT rollout, host_id, packages, job FROM rollout_hosts;
ALTER TABLE rollout_hosts DROP COLUMN packages;
ALTER TABLE rollout_hosts DROP COLUMN job;
