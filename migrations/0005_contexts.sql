-- Failure context: why a build failed (stage, commit, author, log tail) or why a job was
-- disabled or vanished, fetched once per build and shown on every card of it.

CREATE TABLE contexts (
    job_id      TEXT NOT NULL,
    -- 'build' (a failed build: `key` is its last_build_time, Unix ms, as ShowJobInfo and the
    -- job lists give it) or 'why' (a disabled or vanished job: `key` is the event's time).
    kind        TEXT NOT NULL,
    key         INTEGER NOT NULL,
    -- 'pending' (being fetched), 'done' (every call answered), 'partial' (some did not),
    -- 'failed' (none did).
    state       TEXT NOT NULL,
    build_no    INTEGER,
    -- The context as JSON (domain::context::Context), already scrubbed; NULL while pending.
    context     TEXT,
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL,
    PRIMARY KEY (job_id, kind, key)
);

-- The context an event shows (NULL: none was asked for).
ALTER TABLE events ADD COLUMN context_kind TEXT;
ALTER TABLE events ADD COLUMN context_key INTEGER;

-- 'post' (the event's message) or 'context' (edit the incident's message to add a context that
-- arrived after the alert had gone).
ALTER TABLE deliveries ADD COLUMN purpose TEXT NOT NULL DEFAULT 'post';
