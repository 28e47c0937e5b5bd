-- PostgreSQL twin of ../0004_flaky.sql: the same tables, columns and indexes (the comments there say
-- what each column holds). INTEGER is BIGINT here (SQLite's integers are 64-bit), and
-- AUTOINCREMENT keys are identity columns.
ALTER TABLE job_state ADD COLUMN outcomes TEXT NOT NULL DEFAULT '';

CREATE TABLE flaky_digests (
    channel     TEXT PRIMARY KEY NOT NULL,
    sent_at     BIGINT NOT NULL
);
