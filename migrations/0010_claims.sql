-- The leader's term that sent a delivery: claimed just before the send, in one statement that
-- also checks the term is still the lease's (the fencing token, on the database's clock), so
-- a deposed leader cannot send. NULL for deliveries claimed before this column, or by a
-- process that leads without a lease (`run --once`, `demo`).
ALTER TABLE deliveries ADD COLUMN claimed_token INTEGER;
