-- Tenants, their API keys, and the HTTP API's idempotency records.
-- As in 0001: instants are INTEGER microseconds since the Unix epoch, UTC. No FOREIGN KEY ties
-- jobs, schedules or keys to a tenant row: jobs of tenant 'default' exist without one.

CREATE TABLE hora_tenants (
    id                   TEXT PRIMARY KEY,
    name                 TEXT NOT NULL,
    webhook_secret       TEXT NOT NULL,  -- whsec_ + base64 of the signing key
    max_pending_jobs     INTEGER CHECK (max_pending_jobs IS NULL OR max_pending_jobs > 0),
    max_active_schedules INTEGER CHECK (max_active_schedules IS NULL
                                        OR max_active_schedules > 0),
    rate_limit           REAL CHECK (rate_limit IS NULL OR rate_limit > 0),  -- requests/second
    created_at           INTEGER NOT NULL,
    updated_at           INTEGER NOT NULL
);

-- The key itself is never stored: key_hash is its SHA-256, the lookup on every request.
CREATE TABLE hora_api_keys (
    id         TEXT PRIMARY KEY,
    tenant_id  TEXT NOT NULL,
    name       TEXT,
    prefix     TEXT NOT NULL,
    key_hash   TEXT NOT NULL UNIQUE,
    scopes     TEXT NOT NULL,  -- JSON array of scope names
    created_at INTEGER NOT NULL,
    revoked_at INTEGER  -- kept, not deleted: a revoked key is still recognised (and refused)
);
CREATE INDEX hora_api_keys_tenant ON hora_api_keys (tenant_id, id);

-- One row per Idempotency-Key of a tenant: in progress while status IS NULL, then the
-- response to replay. Purged by age.
CREATE TABLE hora_idempotency (
    tenant_id   TEXT NOT NULL,
    key         TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    status      INTEGER,
    body        TEXT,
    created_at  INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, key)
) WITHOUT ROWID;
CREATE INDEX hora_idempotency_created ON hora_idempotency (created_at);
