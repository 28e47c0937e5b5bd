-- The core pipeline: watched jobs, the latest snapshot per job, history of changes, events,
-- and the delivery outbox (one row per event and channel).

CREATE TABLE watched_jobs (
    job_id      TEXT PRIMARY KEY NOT NULL,
    -- 'config' (from the config file) or 'chat' (added by a chat command).
    source      TEXT NOT NULL,
    -- JSON array of channel names, or NULL for every channel.
    channels    TEXT,
    added_at    INTEGER NOT NULL
);

CREATE TABLE job_state (
    job_id          TEXT PRIMARY KEY NOT NULL,
    -- Last JobInfo seen while the job was visible, as JSON; NULL when never seen.
    info            TEXT,
    presence        TEXT NOT NULL,
    settled_status  TEXT,
    observed_at     INTEGER NOT NULL
);

CREATE TABLE snapshot_history (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    job_id      TEXT NOT NULL,
    observed_at INTEGER NOT NULL,
    presence    TEXT NOT NULL,
    info        TEXT
);
CREATE INDEX snapshot_history_job ON snapshot_history (job_id, observed_at);

CREATE TABLE events (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    job_id      TEXT NOT NULL,
    kind        TEXT NOT NULL,
    job_name    TEXT NOT NULL,
    detected_at INTEGER NOT NULL,
    previous    TEXT,
    current     TEXT,
    summary     TEXT NOT NULL
);
CREATE INDEX events_job ON events (job_id, id);

CREATE TABLE deliveries (
    -- Stable id sent to receivers so they can de-duplicate retries.
    id              TEXT PRIMARY KEY NOT NULL,
    -- Monotonic order of creation: deliveries to one channel go out in this order.
    seq             INTEGER NOT NULL,
    event_id        INTEGER NOT NULL REFERENCES events (id),
    channel         TEXT NOT NULL,
    -- 'pending', 'sent' or 'failed' (permanent failure or abandoned).
    status          TEXT NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL,
    last_error      TEXT,
    created_at      INTEGER NOT NULL,
    sent_at         INTEGER
);
CREATE UNIQUE INDEX deliveries_seq ON deliveries (seq);
CREATE INDEX deliveries_pending ON deliveries (status, channel, seq);
