-- Workers and queues you can see (the workers migration).
--
-- hora_workers: one row per worker process, upserted when it starts, refreshed by its
-- heartbeat (last_seen_at, running) and marked stopped on a clean shutdown. A worker not
-- seen for a few heartbeat intervals is shown as lost; rows not seen for a day are deleted in
-- bounded batches by any worker's heartbeat. Workers claim the jobs of every tenant, so a row
-- belongs to no tenant. As in 0001, instants are INTEGER microseconds, the callers' clocks.
CREATE TABLE hora_workers (
    id           TEXT PRIMARY KEY,
    host         TEXT NOT NULL,
    pid          INTEGER NOT NULL,
    version      TEXT NOT NULL,
    queues       TEXT NOT NULL,  -- JSON array of queue names
    tasks        TEXT,           -- JSON array of the task names it runs; NULL: any task
    workflows    TEXT NOT NULL,  -- JSON array of the workflow names it runs
    concurrency  INTEGER NOT NULL,
    heartbeat    REAL NOT NULL,  -- seconds between heartbeats (what "lost" is counted in)
    started_at   INTEGER NOT NULL,
    last_seen_at INTEGER NOT NULL,
    running      INTEGER NOT NULL DEFAULT 0,  -- jobs running at the last heartbeat
    stopped_at   INTEGER          -- set by a clean shutdown
) WITHOUT ROWID;
CREATE INDEX hora_workers_seen ON hora_workers (last_seen_at);

-- A queue's own state, per tenant: a paused queue's jobs are not claimed. No row: running.
CREATE TABLE hora_queues (
    tenant_id TEXT NOT NULL,
    name      TEXT NOT NULL,
    paused    INTEGER NOT NULL DEFAULT 0 CHECK (paused IN (0, 1)),
    paused_at INTEGER,
    reason    TEXT,
    PRIMARY KEY (tenant_id, name)
) WITHOUT ROWID;

-- GET /v1/queues: a tenant's jobs grouped by queue and state in one index range (there is
-- no other index on tenant_id); finished jobs other than dead ones are not in it.
CREATE INDEX hora_jobs_queue_state ON hora_jobs (tenant_id, queue, state, due_at)
    WHERE state IN ('scheduled', 'retrying', 'running', 'dead');
