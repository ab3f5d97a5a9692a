-- Schedules, their tick ledger, and the link from a job to the schedule that fired it.
-- As in 0001: instants are timestamptz, ids compare byte-wise (COLLATE "C"), and no FOREIGN
-- KEY ties ticks or jobs to a schedule (deleting a schedule deletes its ticks explicitly and
-- leaves the jobs it fired alone).

CREATE TABLE hora_schedules (
    id             text COLLATE "C" PRIMARY KEY,
    tenant_id      text NOT NULL DEFAULT 'default',
    name           text CHECK (name IS NULL OR length(name) BETWEEN 1 AND 200),
    task           text NOT NULL CHECK (length(task) BETWEEN 1 AND 200),
    payload        jsonb NOT NULL,
    trigger        jsonb NOT NULL,  -- the spec: the only truth about when it fires
    queue          text NOT NULL,
    priority       integer NOT NULL DEFAULT 0,
    max_attempts   integer NOT NULL CHECK (max_attempts >= 1),
    retry_policy   jsonb,
    timeout        double precision CHECK (timeout IS NULL OR timeout > 0),
    correlation_id text,
    misfire_policy text NOT NULL CHECK (misfire_policy IN ('skip', 'run_once', 'run_all')),
    misfire_grace  double precision NOT NULL CHECK (misfire_grace >= 0),
    catchup_limit  integer NOT NULL CHECK (catchup_limit >= 1),
    overlap_policy text NOT NULL CHECK (overlap_policy IN ('allow', 'skip', 'queue',
                                                           'cancel_previous')),
    state          text NOT NULL CHECK (state IN ('active', 'paused')),
    next_fire_at   timestamptz,  -- derived from the trigger; NULL once it will never fire again
    cursor         timestamptz NOT NULL,  -- occurrences up to this nominal instant are dealt with
    created_at     timestamptz NOT NULL,
    updated_at     timestamptz NOT NULL
);
CREATE UNIQUE INDEX hora_schedules_name ON hora_schedules (tenant_id, name)
    WHERE name IS NOT NULL;
-- The scheduler's question, "which schedules are due?", reads only those that are.
CREATE INDEX hora_schedules_due ON hora_schedules (next_fire_at)
    WHERE state = 'active' AND next_fire_at IS NOT NULL;
CREATE INDEX hora_schedules_tenant ON hora_schedules (tenant_id, id);

-- One row per nominal occurrence: fired (with its job) or skipped (with the reason).
CREATE TABLE hora_schedule_ticks (
    schedule_id text COLLATE "C" NOT NULL,  -- no FOREIGN KEY: see above
    nominal     timestamptz NOT NULL,
    fire_at     timestamptz NOT NULL,
    outcome     text NOT NULL CHECK (outcome IN ('fired', 'skipped')),
    reason      text,
    job_id      text COLLATE "C",
    recorded_at timestamptz NOT NULL,
    PRIMARY KEY (schedule_id, nominal),
    CHECK ((outcome = 'fired') = (job_id IS NOT NULL))
);

-- A nullable column without a default: no rewrite of an existing jobs table.
ALTER TABLE hora_jobs ADD COLUMN schedule_id text COLLATE "C";
-- Overlap policies ask for a schedule's unfinished jobs.
CREATE INDEX hora_jobs_schedule ON hora_jobs (schedule_id, state) WHERE schedule_id IS NOT NULL;
