-- The task and workflow registry: what a worker (or ``hora serve --app``) can run, per
-- tenant, with the defaults its jobs get wherever they are enqueued from and the JSON Schema
-- of the payload derived from the function's signature. Upserted by (tenant, kind, name)
-- at every start-up; read by every enqueue of a name the enqueuing process does not know.
CREATE TABLE hora_task_registry (
    tenant_id      text NOT NULL,
    kind           text NOT NULL CHECK (kind IN ('task', 'workflow')),
    name           text COLLATE "C" NOT NULL,
    queue          text NOT NULL,
    priority       integer NOT NULL,
    max_attempts   integer NOT NULL,
    retry_policy   text,  -- JSON (RetryPolicy.to_dict); NULL: the default policy
    timeout        double precision,  -- seconds; NULL: none
    payload_schema text NOT NULL,  -- JSON Schema of the payload (a workflow's args)
    registered_at  timestamptz NOT NULL,  -- first registration
    updated_at     timestamptz NOT NULL,  -- latest registration
    PRIMARY KEY (tenant_id, kind, name)
);
