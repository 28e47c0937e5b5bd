-- Incidents: a failure opens one per job; later failures update it; the recovery closes it.
-- On platforms that can edit messages, the incident's message is edited as it evolves.

CREATE TABLE incidents (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    job_id          TEXT NOT NULL,
    job_name        TEXT NOT NULL,
    opened_at       INTEGER NOT NULL,
    closed_at       INTEGER,
    -- Failed builds seen while open (the opening one included).
    failed_builds   INTEGER NOT NULL,
    -- The last settled status seen while open.
    last_status     TEXT,
    updated_at      INTEGER NOT NULL
);
-- At most one open incident per job.
CREATE UNIQUE INDEX incidents_open ON incidents (job_id) WHERE closed_at IS NULL;

-- Where each incident was posted, per channel, so it can be edited in place and reminded.
CREATE TABLE incident_messages (
    incident_id     INTEGER NOT NULL REFERENCES incidents (id),
    channel         TEXT NOT NULL,
    -- The platform's message id; NULL when the platform cannot edit (reminders only).
    message_id      TEXT,
    -- When the channel last heard about this incident (post, edit or reminder).
    noticed_at      INTEGER NOT NULL,
    PRIMARY KEY (incident_id, channel)
);

ALTER TABLE events ADD COLUMN incident_id INTEGER;
