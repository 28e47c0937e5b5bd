-- Scheduled digests ([[channels]] digest): the last cron instant each channel's digest was
-- handled for (sent, skipped as all green, or skipped as missed while the bot was down), so
-- each instant is handled once across restarts.

CREATE TABLE digests (
    channel     TEXT PRIMARY KEY NOT NULL,
    -- The cron instant, Unix ms.
    instant     INTEGER NOT NULL,
    -- 'start' (the clock started), 'queued', 'green' (nothing to report), 'missed'.
    outcome     TEXT NOT NULL,
    updated_at  INTEGER NOT NULL
);
