-- Patchwell schema 2: API tokens for administrators and the command line.
-- (Users, roles and scopes come with the evaluate-and-plan work.)

CREATE TABLE api_tokens (
    id TEXT PRIMARY KEY,
    secret_hash {BLOB} NOT NULL UNIQUE,
    name TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    revoked_at BIGINT
);
