-- Retention: the indexes that let the scheduler prune old finished records in bounded batches
-- without scanning a table, and the per-tenant overrides of the retention ages.

-- Finished jobs (not dead letters) by the instant they finished: a prune batch reads the
-- oldest few of this index. Partial, so waiting and running jobs never enter it.
CREATE INDEX hora_jobs_finished ON hora_jobs (finished_at)
    WHERE state IN ('succeeded', 'cancelled', 'discarded', 'replayed');
-- Dead letters have their own (longer) retention, so their own index.
CREATE INDEX hora_jobs_dead_finished ON hora_jobs (finished_at) WHERE state = 'dead';
-- Finished workflows by the instant they finished.
CREATE INDEX hora_workflows_finished ON hora_workflows (finished_at)
    WHERE state IN ('completed', 'failed', 'cancelled');

-- A tenant's retention ages, in seconds, where they differ from the global policy (NULL: as
-- the global policy says). No row: the global policy.
CREATE TABLE hora_retention (
    tenant_id   text COLLATE "C" PRIMARY KEY,
    jobs        double precision CHECK (jobs IS NULL OR jobs > 0),
    dead        double precision CHECK (dead IS NULL OR dead > 0),
    ticks       double precision CHECK (ticks IS NULL OR ticks > 0),
    workflows   double precision CHECK (workflows IS NULL OR workflows > 0),
    idempotency double precision CHECK (idempotency IS NULL OR idempotency > 0),
    updated_at  timestamptz NOT NULL
);
