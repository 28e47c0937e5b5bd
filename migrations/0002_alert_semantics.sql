-- Alert semantics: 404/403 debouncing, the "monitoring blind" state, silences and acks, and
-- why an event was recorded but not sent.

-- 404/403 answers in a row while the job still counts as visible (rules.missing_after).
ALTER TABLE job_state ADD COLUMN missing_polls INTEGER NOT NULL DEFAULT 0;

-- One row: whether CodeArts as a whole can be seen.
CREATE TABLE source_state (
    id              INTEGER PRIMARY KEY CHECK (id = 1),
    -- Consecutive cycles in which every poll failed.
    failed_cycles   INTEGER NOT NULL,
    -- When the first of those cycles ran; NULL while polls succeed.
    blind_since     INTEGER,
    -- Whether source_unreachable was sent for this outage.
    alerted         INTEGER NOT NULL,
    -- The last failing cycle's error kinds, e.g. "timeout: 12".
    cause           TEXT
);

-- /mute, /ack and their CLI equivalents.
CREATE TABLE silences (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    -- 'mute' (nothing is sent) or 'ack' (someone is on it: only the recovery is sent).
    kind        TEXT NOT NULL,
    -- 'job', 'project' or 'all'.
    scope       TEXT NOT NULL,
    -- The job or project id; '*' for 'all'.
    target      TEXT NOT NULL,
    created_by  TEXT NOT NULL,
    reason      TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL,
    -- When it ended (expired and summarised, unmuted, or recovered for an ack); NULL while on.
    ended_at    INTEGER
);
CREATE INDEX silences_active ON silences (ended_at, expires_at);

-- Why the event was recorded but not sent ('silence 3 by alice', 'maintenance window ...').
ALTER TABLE events ADD COLUMN suppressed TEXT;
