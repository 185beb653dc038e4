-- Patchwell schema 8: the fleet's posture, one row per day, so that reports
-- can show compliance over time. body: the server's JSON of the counts
-- (hosts, compliant, findings per class and where their deadlines stand);
-- the latest writing of a day replaces the earlier one.
CREATE TABLE posture_days (
    day TEXT PRIMARY KEY,
    at BIGINT NOT NULL,
    body TEXT NOT NULL
);
