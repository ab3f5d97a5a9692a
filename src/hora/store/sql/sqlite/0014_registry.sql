-- The task and workflow registry: what a worker (or ``hora serve --app``) can run, per
-- tenant, with the defaults its jobs get wherever they are enqueued from and the JSON Schema
-- of the payload derived from the function's signature. Upserted by (tenant, kind, name)
-- at every start-up; read by every enqueue of a name the enqueuing process does not know.
CREATE TABLE hora_task_registry (
    tenant_id      TEXT NOT NULL,
    kind           TEXT NOT NULL CHECK (kind IN ('task', 'workflow')),
    name           TEXT NOT NULL,
    queue          TEXT NOT NULL,
    priority       INTEGER NOT NULL,
    max_attempts   INTEGER NOT NULL,
    retry_policy   TEXT,  -- JSON (RetryPolicy.to_dict); NULL: the default policy
    timeout        REAL,  -- seconds; NULL: none
    payload_schema TEXT NOT NULL,  -- JSON Schema of the payload (a workflow's args)
    registered_at  INTEGER NOT NULL,  -- first registration
    updated_at     INTEGER NOT NULL,  -- latest registration
    PRIMARY KEY (tenant_id, kind, name)
) WITHOUT ROWID;
