-- PostgreSQL twin of ../0005_contexts.sql: the same tables, columns and indexes (the comments there say
-- what each column holds). INTEGER is BIGINT here (SQLite's integers are 64-bit), and
-- AUTOINCREMENT keys are identity columns.
CREATE TABLE contexts (
    job_id      TEXT NOT NULL,
    kind        TEXT NOT NULL,
    key         BIGINT NOT NULL,
    state       TEXT NOT NULL,
    build_no    BIGINT,
    context     TEXT,
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL,
    PRIMARY KEY (job_id, kind, key)
);

ALTER TABLE events ADD COLUMN context_kind TEXT;
ALTER TABLE events ADD COLUMN context_key BIGINT;

ALTER TABLE deliveries ADD COLUMN purpose TEXT NOT NULL DEFAULT 'post';
