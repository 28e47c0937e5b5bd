-- PostgreSQL twin of ../0008_digests.sql: the same tables, columns and indexes (the comments there say
-- what each column holds). INTEGER is BIGINT here (SQLite's integers are 64-bit), and
-- AUTOINCREMENT keys are identity columns.
CREATE TABLE digests (
    channel     TEXT PRIMARY KEY NOT NULL,
    instant     BIGINT NOT NULL,
    outcome     TEXT NOT NULL,
    updated_at  BIGINT NOT NULL
);
