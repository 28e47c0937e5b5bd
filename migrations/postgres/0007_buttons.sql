-- PostgreSQL twin of ../0007_buttons.sql: the same tables, columns and indexes (the comments there say
-- what each column holds). INTEGER is BIGINT here (SQLite's integers are 64-bit), and
-- AUTOINCREMENT keys are identity columns.
CREATE TABLE buttons (
    id          TEXT PRIMARY KEY,
    action      TEXT NOT NULL,
    job_id      TEXT NOT NULL,
    channel     TEXT,
    card        TEXT,
    for_user    TEXT,
    origin      TEXT,
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL
);
CREATE UNIQUE INDEX buttons_card ON buttons (card, action) WHERE card IS NOT NULL;
CREATE INDEX buttons_expiry ON buttons (expires_at);
