-- Workers and queues you can see (the workers migration).
--
-- hora_workers: one row per worker process, upserted when it starts, refreshed by its
-- heartbeat (last_seen_at, running) and marked stopped on a clean shutdown. A worker not
-- seen for a few heartbeat intervals is shown as lost; rows not seen for a day are deleted in
-- bounded batches by any worker's heartbeat. Workers claim the jobs of every tenant, so a row
-- belongs to no tenant. As in 0001, instants are timestamptz, the callers' clocks.
CREATE TABLE hora_workers (
    id           text PRIMARY KEY,
    host         text NOT NULL,
    pid          integer NOT NULL,
    version      text NOT NULL,
    queues       jsonb NOT NULL,  -- array of queue names
    tasks        jsonb,           -- array of the task names it runs; NULL: any task
    workflows    jsonb NOT NULL,  -- array of the workflow names it runs
    concurrency  integer NOT NULL,
    heartbeat    double precision NOT NULL,  -- seconds between heartbeats
    started_at   timestamptz NOT NULL,
    last_seen_at timestamptz NOT NULL,
    running      integer NOT NULL DEFAULT 0,  -- jobs running at the last heartbeat
    stopped_at   timestamptz          -- set by a clean shutdown
);
CREATE INDEX hora_workers_seen ON hora_workers (last_seen_at);

-- A queue's own state, per tenant: a paused queue's jobs are not claimed. No row: running.
CREATE TABLE hora_queues (
    tenant_id text NOT NULL,
    name      text NOT NULL,
    paused    boolean NOT NULL DEFAULT false,
    paused_at timestamptz,
    reason    text,
    PRIMARY KEY (tenant_id, name)
);

-- GET /v1/queues: a tenant's jobs grouped by queue and state in one index range (there is
-- no other index on tenant_id); finished jobs other than dead ones are not in it.
CREATE INDEX hora_jobs_queue_state ON hora_jobs (tenant_id, queue, state, due_at)
    WHERE state IN ('scheduled', 'retrying', 'running', 'dead');
