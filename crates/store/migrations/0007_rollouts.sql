-- Patchwell schema 7: rollouts, each host's job in them, and every step the
-- agents report.
-- rollouts.spec: the server's JSON of what the rollout installs (the exact
-- versions frozen at creation), its rings and its options; never changed.
-- rollouts.state: the server's JSON of what the executor recorded (ring
-- starts, approvals, a halt, expiry); rewritten with generation checked.
CREATE TABLE rollouts (
    name TEXT PRIMARY KEY,
    spec TEXT NOT NULL,
    generation BIGINT NOT NULL,
    state TEXT NOT NULL,
    status TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    created_by TEXT NOT NULL,
    updated_at BIGINT NOT NULL
);

-- One row per host of a rollout. progress: not_started, assigned (a job
-- waits for the host's next check-in), in_progress, succeeded, failed,
-- rolling_back, rolled_back, rollback_failed. packages: the host's job
-- (JSON); changes: what its install changed, as the agent reported it.
CREATE TABLE rollout_hosts (
    rollout TEXT NOT NULL REFERENCES rollouts (name) ON DELETE CASCADE,
    host_id TEXT NOT NULL REFERENCES hosts (id) ON DELETE CASCADE,
    ring BIGINT NOT NULL,
    packages TEXT NOT NULL,
    progress TEXT NOT NULL,
    job_id TEXT,
    job_kind TEXT,
    job TEXT,
    step TEXT,
    since BIGINT,
    done_at BIGINT,
    detail TEXT,
    changes TEXT,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (rollout, host_id)
);
CREATE INDEX rollout_hosts_by_job ON rollout_hosts (job_id);
CREATE INDEX rollout_hosts_by_progress ON rollout_hosts (progress, host_id);

CREATE TABLE job_events (
    seq {ID},
    job_id TEXT NOT NULL,
    rollout TEXT NOT NULL,
    host_id TEXT NOT NULL,
    step TEXT NOT NULL,
    at BIGINT NOT NULL,
    received_at BIGINT NOT NULL,
    detail TEXT
);
CREATE INDEX job_events_by_rollout ON job_events (rollout, host_id, seq);
