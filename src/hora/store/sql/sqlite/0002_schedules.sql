-- Schedules, their tick ledger, and the link from a job to the schedule that fired it.

CREATE TABLE hora_schedules (
    id             TEXT PRIMARY KEY,
    tenant_id      TEXT NOT NULL DEFAULT 'default',
    name           TEXT CHECK (name IS NULL OR length(name) BETWEEN 1 AND 200),
    task           TEXT NOT NULL CHECK (length(task) BETWEEN 1 AND 200),
    payload        TEXT NOT NULL,
    trigger        TEXT NOT NULL,  -- the JSON spec: the only truth about when it fires
    queue          TEXT NOT NULL,
    priority       INTEGER NOT NULL DEFAULT 0,
    max_attempts   INTEGER NOT NULL CHECK (max_attempts >= 1),
    retry_policy   TEXT,
    timeout        REAL CHECK (timeout IS NULL OR timeout > 0),
    correlation_id TEXT,
    misfire_policy TEXT NOT NULL CHECK (misfire_policy IN ('skip', 'run_once', 'run_all')),
    misfire_grace  REAL NOT NULL CHECK (misfire_grace >= 0),
    catchup_limit  INTEGER NOT NULL CHECK (catchup_limit >= 1),
    overlap_policy TEXT NOT NULL CHECK (overlap_policy IN ('allow', 'skip', 'queue',
                                                           'cancel_previous')),
    state          TEXT NOT NULL CHECK (state IN ('active', 'paused')),
    next_fire_at   INTEGER,  -- derived from the trigger; NULL once it will never fire again
    cursor         INTEGER NOT NULL,  -- occurrences up to this nominal instant are dealt with
    created_at     INTEGER NOT NULL,
    updated_at     INTEGER NOT NULL
);
CREATE UNIQUE INDEX hora_schedules_name ON hora_schedules (tenant_id, name)
    WHERE name IS NOT NULL;
-- The scheduler's question, "which schedules are due?", reads only those that are.
CREATE INDEX hora_schedules_due ON hora_schedules (next_fire_at)
    WHERE state = 'active' AND next_fire_at IS NOT NULL;
CREATE INDEX hora_schedules_tenant ON hora_schedules (tenant_id, id);

-- One row per nominal occurrence: fired (with its job) or skipped (with the reason).
CREATE TABLE hora_schedule_ticks (
    schedule_id TEXT NOT NULL,
    nominal     INTEGER NOT NULL,
    fire_at     INTEGER NOT NULL,
    outcome     TEXT NOT NULL CHECK (outcome IN ('fired', 'skipped')),
    reason      TEXT,
    job_id      TEXT,
    recorded_at INTEGER NOT NULL,
    PRIMARY KEY (schedule_id, nominal),
    CHECK ((outcome = 'fired') = (job_id IS NOT NULL))
) WITHOUT ROWID;

ALTER TABLE hora_jobs ADD COLUMN schedule_id TEXT;
-- Overlap policies ask for a schedule's unfinished jobs.
CREATE INDEX hora_jobs_schedule ON hora_jobs (schedule_id, state) WHERE schedule_id IS NOT NULL;
