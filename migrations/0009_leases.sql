-- Leadership (docs/ha.md): of the `run` processes sharing this database, the one holding the
-- 'leader' lease polls, alerts and sends. Times are the database's own clock (milliseconds
-- since the epoch), so the replicas' clocks never have to agree.

CREATE TABLE leases (
    name        TEXT PRIMARY KEY,
    -- Who holds it: '<host>:<pid>:<random>' of the process.
    holder      TEXT NOT NULL,
    -- Raised at every new term: the fencing token (a deposed holder's token is stale).
    token       INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL
);
