-- Flow control: rate limits and concurrency limits shared by every worker on the store,
-- debounce and throttle on enqueue (hora.flow, docs/flow.md). Bucket instants are bigint
-- microseconds since the epoch (GCRA is integer arithmetic, the same in both stores); the
-- others timestamptz as everywhere.

-- A job's gates, computed at enqueue from its task's declarations and checked by every claim:
-- JSON {"rate": [{name, key, count, period, burst}], "concurrency": {key, limit, policy}}.
-- NULL for the (usual) job without limits: the claim's fast path.
ALTER TABLE hora_jobs ADD COLUMN flow text;
-- The concurrency key (limit name and key value) a job counts against while it runs.
ALTER TABLE hora_jobs ADD COLUMN concurrency_key text;
-- Why a due job was passed over by a claim: 'rate:<limit name>' or 'concurrency:<name>'
-- (no key values: the Prometheus gauge groups by it). Cleared when the job starts.
ALTER TABLE hora_jobs ADD COLUMN blocked_on text;
-- Counting a key's running jobs, and finding its next waiting one (FIFO: ids sort by time).
CREATE INDEX hora_jobs_concurrency ON hora_jobs (tenant_id, concurrency_key, state, id)
    WHERE concurrency_key IS NOT NULL;
-- Jobs back from a gate (due on their slot, or woken from a full concurrency key) are
-- claimed ahead of never-seen ones of the same priority: they were in line first, and a
-- backlog of new jobs that the gates must push back first may not starve them.
CREATE INDEX hora_jobs_returning ON hora_jobs (queue, priority, due_at, id)
    WHERE blocked_on IS NOT NULL AND state IN ('scheduled', 'retrying');
-- The waiting-by-reason gauge reads only the blocked jobs.
CREATE INDEX hora_jobs_blocked ON hora_jobs (blocked_on)
    WHERE blocked_on IS NOT NULL AND state IN ('scheduled', 'retrying');

-- What a process without the code needs of a task's flow options (FlowSpec.to_dict).
ALTER TABLE hora_task_registry ADD COLUMN flow jsonb;

-- Rate limits set at run time by name (app.rate_limits.set, PUT /v1/rate-limits/{name},
-- hora limits set): they override the rate a task declares under the same name, and
-- 'queue:<name>' limits every job of that queue. No row: the declared rate (or no limit).
CREATE TABLE hora_rate_limits (
    tenant_id  text NOT NULL,
    name       text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    count      integer NOT NULL CHECK (count >= 1),
    period     double precision NOT NULL CHECK (period > 0),  -- seconds
    burst      integer NOT NULL DEFAULT 1 CHECK (burst >= 1),
    updated_at timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, name)
);

-- One GCRA bucket per (limit, key value): tat is its theoretical arrival time; slot the last
-- start instant promised to a job the limit pushed back (so pushed jobs queue up one
-- interval apart instead of all coming back at once). A bucket whose tat is in the past is
-- the same as no row: such rows may be deleted at any time.
CREATE TABLE hora_rate_buckets (
    tenant_id text NOT NULL,
    name      text NOT NULL,
    key       text NOT NULL,  -- '' for an unkeyed limit
    tat       bigint NOT NULL,
    slot      bigint,
    PRIMARY KEY (tenant_id, name, key)
);
CREATE INDEX hora_rate_buckets_tat ON hora_rate_buckets (tat);

-- Debounce and throttle: per (tenant, kind, task, key value), the job that holds the key and
-- until when. kind 'debounce': job_id is the waiting job later enqueues fold into, first_at
-- when the first of them came (for max_wait); kind 'throttle': enqueues before until drop.
CREATE TABLE hora_flow_keys (
    tenant_id text NOT NULL,
    kind      text NOT NULL CHECK (kind IN ('debounce', 'throttle')),
    task      text NOT NULL,
    key       text NOT NULL,
    job_id    text NOT NULL,
    first_at  timestamptz NOT NULL,
    until     timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, kind, task, key)
);
CREATE INDEX hora_flow_keys_until ON hora_flow_keys (until);
