-- Patchwell schema 6: what a host's stored inventory sums to, so that a
-- delta is checked and stored by its own packages alone.
-- packages_sum: protocol::PackageSum of the host's packages (32 bytes).
-- head_digest: SHA-256 of the updates, neighbours and MAC addresses last
-- stored, so an inventory that leaves them alone does not rewrite them.
-- Both are NULL until the host's next full inventory.
ALTER TABLE hosts ADD COLUMN packages_sum {BLOB};
ALTER TABLE hosts ADD COLUMN head_digest {BLOB};
