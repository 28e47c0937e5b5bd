-- PostgreSQL twin of ../0009_leases.sql: the same tables, columns and indexes (the comments there say
-- what each column holds). INTEGER is BIGINT here (SQLite's integers are 64-bit), and
-- AUTOINCREMENT keys are identity columns.
CREATE TABLE leases (
    name        TEXT PRIMARY KEY,
    holder      TEXT NOT NULL,
    token       BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL
);
