-- Patchwell schema 10: when each rollout host's install first succeeded,
-- kept on its line. A rollout's review (time to 50% and 95%) then reads
-- its lines, not every step event of every host (seven or more a host).
ALTER TABLE rollout_hosts ADD COLUMN installed_at BIGINT;
UPDATE rollout_hosts SET installed_at = (
    SELECT MIN(e.at) FROM job_events e
    WHERE e.rollout = rollout_hosts.rollout AND e.host_id = rollout_hosts.host_id
      AND e.step = 'succeeded' AND e.job_id LIKE '%.install.' || e.host_id
);
