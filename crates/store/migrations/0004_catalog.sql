-- Patchwell schema 4: advisory feeds and what they last delivered.
-- A feed's documents are the exact bytes that passed verification; the
-- server parses them into its catalog at start and after each import, so a
-- feed that fails verification never replaces what is in force.

CREATE TABLE feeds (
    name TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    location TEXT NOT NULL,
    -- How it is verified: sha256:HEX, ed25519:KEY or openpgp:KEYRING-FILE.
    verification TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    imported_at BIGINT,
    sha256 TEXT,
    records BIGINT NOT NULL DEFAULT 0,
    rejected BIGINT NOT NULL DEFAULT 0,
    last_error TEXT,
    last_error_at BIGINT
);

CREATE TABLE feed_documents (
    feed TEXT NOT NULL REFERENCES feeds (name) ON DELETE CASCADE,
    name TEXT NOT NULL,
    content {BLOB} NOT NULL,
    PRIMARY KEY (feed, name)
);
