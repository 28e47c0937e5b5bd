-- Flaky jobs: the recent finished builds' outcomes per job, and when each channel last got
-- its daily digest of flaky jobs.

-- Oldest first: 'F' failure, 'S' success (at most rules.flaky_window).
ALTER TABLE job_state ADD COLUMN outcomes TEXT NOT NULL DEFAULT '';

CREATE TABLE flaky_digests (
    channel     TEXT PRIMARY KEY NOT NULL,
    sent_at     INTEGER NOT NULL
);
