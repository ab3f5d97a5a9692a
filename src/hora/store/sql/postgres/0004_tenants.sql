-- Tenants, their API keys, and the HTTP API's idempotency records.
-- As in 0001: instants are timestamptz and ids compare byte-wise (COLLATE "C"), so keyset
-- pagination walks them in the same order as SQLite. No FOREIGN KEY ties jobs, schedules or
-- keys to a tenant row: jobs of tenant 'default' exist without one.

CREATE TABLE hora_tenants (
    id                   text COLLATE "C" PRIMARY KEY,
    name                 text NOT NULL,
    webhook_secret       text NOT NULL,  -- whsec_ + base64 of the signing key
    max_pending_jobs     integer CHECK (max_pending_jobs IS NULL OR max_pending_jobs > 0),
    max_active_schedules integer CHECK (max_active_schedules IS NULL
                                        OR max_active_schedules > 0),
    rate_limit           double precision CHECK (rate_limit IS NULL OR rate_limit > 0),
    created_at           timestamptz NOT NULL,
    updated_at           timestamptz NOT NULL
);

-- The key itself is never stored: key_hash is its SHA-256, the lookup on every request.
CREATE TABLE hora_api_keys (
    id         text COLLATE "C" PRIMARY KEY,
    tenant_id  text NOT NULL,
    name       text,
    prefix     text NOT NULL,
    key_hash   text NOT NULL UNIQUE,
    scopes     text[] NOT NULL,
    created_at timestamptz NOT NULL,
    revoked_at timestamptz  -- kept, not deleted: a revoked key is still recognised (and refused)
);
CREATE INDEX hora_api_keys_tenant ON hora_api_keys (tenant_id, id);

-- One row per Idempotency-Key of a tenant: in progress while status IS NULL, then the
-- response to replay. Purged by age.
CREATE TABLE hora_idempotency (
    tenant_id   text NOT NULL,
    key         text NOT NULL,
    fingerprint text NOT NULL,
    status      integer,
    body        text,
    created_at  timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, key)
);
CREATE INDEX hora_idempotency_created ON hora_idempotency (created_at);
