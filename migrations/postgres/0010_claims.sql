-- PostgreSQL twin of ../0010_claims.sql.
ALTER TABLE deliveries ADD COLUMN claimed_token BIGINT;
