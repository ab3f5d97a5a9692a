-- Distributed locks: one row per (tenant, name), kept for good once created, so the fencing
-- token counts every grant of the name and is never handed out twice, even after a release.
-- As in 0001: instants are INTEGER microseconds since the Unix epoch, UTC, and they are the
-- callers' clocks (every statement receives now), never the database's.

CREATE TABLE hora_locks (
    tenant_id   TEXT NOT NULL,
    name        TEXT NOT NULL,
    owner       TEXT,  -- NULL once released
    token       INTEGER NOT NULL CHECK (token >= 1),  -- the latest grant's fencing token
    acquired_at INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL,  -- free from this instant on (a released lock: in the past)
    PRIMARY KEY (tenant_id, name)
) WITHOUT ROWID;
