-- Actions taken from chat on CodeArts (re-run a build, stop one): recorded before CodeArts is
-- called and settled after, so a crash in between never repeats one, and two clicks on the
-- same failed build make one call. Also the audit trail `/history` and `actions` show.

CREATE TABLE actions (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    -- 'rerun' or 'stop'.
    kind        TEXT NOT NULL,
    job_id      TEXT NOT NULL,
    -- The build acted on: the build re-run, or the build stopped.
    build_no    INTEGER,
    -- One call per target: 'rerun:<job>:<build>', 'stop:<job>:<build>'. Cleared when CodeArts
    -- refused, so the action may be tried again; kept otherwise, so it never runs twice.
    once_key    TEXT UNIQUE,
    -- Who asked: 'discord:<user id>', 'slack:<user id>', 'cli'.
    who         TEXT NOT NULL,
    -- How answers name them: '@alice'.
    shown_as    TEXT NOT NULL,
    platform    TEXT NOT NULL,
    channel     TEXT,
    -- 'started' (recorded, CodeArts asked), 'done', 'failed' (CodeArts refused or could not be
    -- reached).
    state       TEXT NOT NULL,
    -- The build a re-run started.
    new_build   INTEGER,
    -- What CodeArts answered (or why it could not be asked), and its request id.
    answer      TEXT,
    request_id  TEXT,
    created_at  INTEGER NOT NULL,
    finished_at INTEGER
);
CREATE INDEX actions_job ON actions (job_id, id);
