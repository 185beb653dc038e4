-- Patchwell schema 5: people (users, sessions, scoped API tokens, the patch
-- procedure and its acknowledgements), the hash-chained audit log, the
-- planning objects (policies, baselines, exemptions, approvals, approval
-- rules, contacts, settings) and when each host was first seen affected by
-- each advisory (for SLA clocks that start at first detection).

CREATE TABLE users (
    username TEXT PRIMARY KEY,
    role TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    email TEXT,
    created_at BIGINT NOT NULL,
    disabled_at BIGINT
);

CREATE TABLE sessions (
    secret_hash {BLOB} PRIMARY KEY,
    username TEXT NOT NULL REFERENCES users (username) ON DELETE CASCADE,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    revoked_at BIGINT
);

-- Tokens made before users existed belong to the first administrator,
-- who is created at the next start (see `PeopleStore::ensure_first_admin`).
ALTER TABLE api_tokens ADD COLUMN username TEXT;
ALTER TABLE api_tokens ADD COLUMN scopes TEXT NOT NULL DEFAULT 'read,operate,approve,administer';

CREATE TABLE procedure_versions (
    version BIGINT PRIMARY KEY,
    body TEXT NOT NULL,
    published_at BIGINT NOT NULL,
    published_by TEXT NOT NULL
);

CREATE TABLE procedure_acks (
    username TEXT NOT NULL REFERENCES users (username) ON DELETE CASCADE,
    version BIGINT NOT NULL REFERENCES procedure_versions (version),
    acknowledged_at BIGINT NOT NULL,
    PRIMARY KEY (username, version)
);

-- Append-only. Each entry's hash covers its fields and the previous entry's
-- hash; audit_head holds the last sequence number and hash, so removing the
-- newest entries is detected too. Appending updates the head first, which
-- serialises appenders on both databases.
CREATE TABLE audit_log (
    seq BIGINT PRIMARY KEY,
    at BIGINT NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    subject TEXT NOT NULL,
    before_json TEXT,
    after_json TEXT,
    reason TEXT,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL
);
CREATE INDEX audit_log_by_subject ON audit_log (subject, seq);

CREATE TABLE audit_head (
    id BIGINT PRIMARY KEY,
    seq BIGINT NOT NULL,
    hash TEXT NOT NULL
);
INSERT INTO audit_head (id, seq, hash) VALUES (1, 0, '0000000000000000000000000000000000000000000000000000000000000000');

-- Policies, baselines, exemptions, approvals, approval rules, contacts and
-- settings: small documents, validated by the server before they are stored.
CREATE TABLE plan_objects (
    kind TEXT NOT NULL,
    name TEXT NOT NULL,
    body TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    updated_by TEXT NOT NULL,
    PRIMARY KEY (kind, name)
);

CREATE TABLE detections (
    host_id TEXT NOT NULL REFERENCES hosts (id) ON DELETE CASCADE,
    advisory_id TEXT NOT NULL,
    first_seen BIGINT NOT NULL,
    PRIMARY KEY (host_id, advisory_id)
);
