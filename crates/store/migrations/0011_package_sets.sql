-- Patchwell schema 11: package sets, so that hosts cloned from one image
-- share one copy of its package list and one entry per package in the
-- by-package index, instead of a thousand rows each.
--
-- A package set is an immutable list of package rows (version, state,
-- held). A host points at one set (hosts.package_set) and keeps its own
-- rows in host_packages only where it differs from that set: a row with
-- present = 1 adds a package or replaces the set's row of that version
-- (another state or hold); a row with present = 0 takes the set's row of
-- that version away. A host's packages are its present rows and the rows
-- of its set that it has no row for. Rows stored before this schema are
-- present rows of hosts without a set, so they keep their meaning.
CREATE TABLE package_sets (
    id {ID},
    -- protocol::PackageSum of the set's rows, to find a set by its content
    -- (the rows are compared too: a sum is not proof).
    sum {BLOB} NOT NULL,
    size BIGINT NOT NULL
);
CREATE INDEX package_sets_by_sum ON package_sets (sum);

CREATE TABLE package_set_rows (
    set_id BIGINT NOT NULL REFERENCES package_sets (id) ON DELETE CASCADE,
    package_id BIGINT NOT NULL REFERENCES package_versions (id),
    state TEXT NOT NULL,
    held BIGINT NOT NULL,
    PRIMARY KEY (set_id, package_id)
);
CREATE INDEX package_set_rows_by_package ON package_set_rows (package_id);

ALTER TABLE hosts ADD COLUMN package_set BIGINT REFERENCES package_sets (id);
-- How many rows of its own the host keeps beside its set.
ALTER TABLE hosts ADD COLUMN own_packages BIGINT NOT NULL DEFAULT 0;
CREATE INDEX hosts_by_package_set ON hosts (package_set);
ALTER TABLE host_packages ADD COLUMN present BIGINT NOT NULL DEFAULT 1;
UPDATE hosts SET own_packages = (SELECT COUNT(*) FROM host_packages hp WHERE hp.host_id = hosts.id);
