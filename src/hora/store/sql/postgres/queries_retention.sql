-- Retention: bounded prunes of old finished records, one short transaction per batch.
-- Every batch reads the head of a partial index by age (ORDER BY the indexed instant, LIMIT)
-- and locks what it deletes with FOR UPDATE SKIP LOCKED, so it never waits on a worker's
-- transaction and its cost follows the batch, not the table. A batch is for one tenant
-- (tenant_id) or for every tenant but those with their own policy (tenant_id NULL, exclude).
-- Each prune is one statement: the records and what hangs off them go together. Deletes
-- find their rows by index conditions over the batch's keys (= ANY (ARRAY(...))), and the
-- store runs them with sequential scans and merge joins disabled (SET LOCAL): a batch of
-- 1000 reads its rows by index whatever the statistics say, never the whole table.

-- name: prune_jobs
-- Finished jobs (not dead letters). A workflow's own job (task hora.workflow:*) goes only once
-- its workflow has finished (or is gone): a live workflow's run and timer jobs hold the
-- idempotency keys that keep it from being woken twice.
WITH doomed AS (
    SELECT j.id FROM hora_jobs AS j
    WHERE j.state IN ('succeeded', 'cancelled', 'discarded', 'replayed')
      AND j.finished_at < %(cutoff)s
      AND (%(tenant_id)s::text IS NULL OR j.tenant_id = %(tenant_id)s::text)
      AND (%(tenant_id)s::text IS NOT NULL OR j.tenant_id <> ALL(%(exclude)s::text[]))
      AND (left(j.task, 14) <> 'hora.workflow:' OR NOT EXISTS (
          SELECT 1 FROM hora_workflows AS w
          WHERE w.tenant_id = j.tenant_id AND w.id = j.payload ->> 'workflow_id'
            AND w.state NOT IN ('completed', 'failed', 'cancelled') OFFSET 0))
    ORDER BY j.finished_at
    LIMIT %(limit)s
    FOR UPDATE OF j SKIP LOCKED),
gone AS (DELETE FROM hora_jobs WHERE id = ANY (ARRAY(SELECT id FROM doomed)) RETURNING id),
attempts AS (DELETE FROM hora_job_attempts WHERE job_id IN (SELECT id FROM gone)),
events AS (DELETE FROM hora_job_events WHERE job_id IN (SELECT id FROM gone))
SELECT count(*) FROM gone;

-- name: prune_dead
-- Dead letters, on their own (longer) retention.
WITH doomed AS (
    SELECT j.id FROM hora_jobs AS j
    WHERE j.state IN ('dead')
      AND j.finished_at < %(cutoff)s
      AND (%(tenant_id)s::text IS NULL OR j.tenant_id = %(tenant_id)s::text)
      AND (%(tenant_id)s::text IS NOT NULL OR j.tenant_id <> ALL(%(exclude)s::text[]))
      AND (left(j.task, 14) <> 'hora.workflow:' OR NOT EXISTS (
          SELECT 1 FROM hora_workflows AS w
          WHERE w.tenant_id = j.tenant_id AND w.id = j.payload ->> 'workflow_id'
            AND w.state NOT IN ('completed', 'failed', 'cancelled') OFFSET 0))
    ORDER BY j.finished_at
    LIMIT %(limit)s
    FOR UPDATE OF j SKIP LOCKED),
gone AS (DELETE FROM hora_jobs WHERE id = ANY (ARRAY(SELECT id FROM doomed)) RETURNING id),
attempts AS (DELETE FROM hora_job_attempts WHERE job_id IN (SELECT id FROM gone)),
events AS (DELETE FROM hora_job_events WHERE job_id IN (SELECT id FROM gone))
SELECT count(*) FROM gone;

-- name: count_prunable_jobs
SELECT count(*) FROM (
    SELECT j.id FROM hora_jobs AS j
    WHERE j.state IN ('succeeded', 'cancelled', 'discarded', 'replayed')
      AND j.finished_at < %(cutoff)s
      AND (%(tenant_id)s::text IS NULL OR j.tenant_id = %(tenant_id)s::text)
      AND (%(tenant_id)s::text IS NOT NULL OR j.tenant_id <> ALL(%(exclude)s::text[]))
      AND (left(j.task, 14) <> 'hora.workflow:' OR NOT EXISTS (
          SELECT 1 FROM hora_workflows AS w
          WHERE w.tenant_id = j.tenant_id AND w.id = j.payload ->> 'workflow_id'
            AND w.state NOT IN ('completed', 'failed', 'cancelled') OFFSET 0))
    LIMIT %(limit)s) AS prunable;

-- name: count_prunable_dead
SELECT count(*) FROM (
    SELECT j.id FROM hora_jobs AS j
    WHERE j.state IN ('dead')
      AND j.finished_at < %(cutoff)s
      AND (%(tenant_id)s::text IS NULL OR j.tenant_id = %(tenant_id)s::text)
      AND (%(tenant_id)s::text IS NOT NULL OR j.tenant_id <> ALL(%(exclude)s::text[]))
      AND (left(j.task, 14) <> 'hora.workflow:' OR NOT EXISTS (
          SELECT 1 FROM hora_workflows AS w
          WHERE w.tenant_id = j.tenant_id AND w.id = j.payload ->> 'workflow_id'
            AND w.state NOT IN ('completed', 'failed', 'cancelled') OFFSET 0))
    LIMIT %(limit)s) AS prunable;

-- name: prune_ticks
-- Ticks whose occurrence (nominal instant) is older than the cutoff: per schedule, a range of
-- the ledger's primary key (schedule_id, nominal). Ticks are only ever inserted, so a prune
-- locks nothing it has not found to delete.
WITH doomed AS (
    SELECT t.schedule_id, t.nominal
    FROM hora_schedules AS s
    CROSS JOIN LATERAL (
        SELECT x.schedule_id, x.nominal FROM hora_schedule_ticks AS x
        WHERE x.schedule_id = s.id AND x.nominal < %(cutoff)s
        ORDER BY x.nominal
        LIMIT %(limit)s) AS t
    WHERE (%(tenant_id)s::text IS NULL OR s.tenant_id = %(tenant_id)s::text)
      AND (%(tenant_id)s::text IS NOT NULL OR s.tenant_id <> ALL(%(exclude)s::text[]))
    LIMIT %(limit)s)
DELETE FROM hora_schedule_ticks
WHERE schedule_id = ANY (ARRAY(SELECT schedule_id FROM doomed))
  AND nominal < %(cutoff)s
  AND (schedule_id, nominal) IN (SELECT schedule_id, nominal FROM doomed);

-- name: count_prunable_ticks
SELECT count(*) FROM (
    SELECT t.schedule_id, t.nominal
    FROM hora_schedules AS s
    CROSS JOIN LATERAL (
        SELECT x.schedule_id, x.nominal FROM hora_schedule_ticks AS x
        WHERE x.schedule_id = s.id AND x.nominal < %(cutoff)s
        ORDER BY x.nominal
        LIMIT %(limit)s) AS t
    WHERE (%(tenant_id)s::text IS NULL OR s.tenant_id = %(tenant_id)s::text)
      AND (%(tenant_id)s::text IS NOT NULL OR s.tenant_id <> ALL(%(exclude)s::text[]))
    LIMIT %(limit)s) AS prunable;

-- name: prune_workflows
-- Finished workflows with their journal, signals and approval requests, oldest first; a child
-- goes only once its parent has finished too (the parent's run may still read it).
WITH doomed AS (
    SELECT w.tenant_id, w.id FROM hora_workflows AS w
    WHERE w.state IN ('completed', 'failed', 'cancelled')
      AND w.finished_at < %(cutoff)s
      AND (%(tenant_id)s::text IS NULL OR w.tenant_id = %(tenant_id)s::text)
      AND (%(tenant_id)s::text IS NOT NULL OR w.tenant_id <> ALL(%(exclude)s::text[]))
      AND (w.parent_id IS NULL OR NOT EXISTS (
          SELECT 1 FROM hora_workflows AS p
          WHERE p.tenant_id = w.tenant_id AND p.id = w.parent_id
            AND p.state NOT IN ('completed', 'failed', 'cancelled') OFFSET 0))
    ORDER BY w.finished_at
    LIMIT %(limit)s
    FOR UPDATE OF w SKIP LOCKED),
history AS (DELETE FROM hora_workflow_history
            WHERE tenant_id = ANY (ARRAY(SELECT tenant_id FROM doomed))
              AND workflow_id = ANY (ARRAY(SELECT id FROM doomed))
              AND (tenant_id, workflow_id) IN (SELECT tenant_id, id FROM doomed)),
signals AS (DELETE FROM hora_workflow_signals
            WHERE tenant_id = ANY (ARRAY(SELECT tenant_id FROM doomed))
              AND workflow_id = ANY (ARRAY(SELECT id FROM doomed))
              AND (tenant_id, workflow_id) IN (SELECT tenant_id, id FROM doomed)),
approvals AS (DELETE FROM hora_approvals
              WHERE tenant_id = ANY (ARRAY(SELECT tenant_id FROM doomed))
                AND workflow_id = ANY (ARRAY(SELECT id FROM doomed))
                AND (tenant_id, workflow_id) IN (SELECT tenant_id, id FROM doomed)),
gone AS (DELETE FROM hora_workflows
         WHERE tenant_id = ANY (ARRAY(SELECT tenant_id FROM doomed))
           AND id = ANY (ARRAY(SELECT id FROM doomed))
           AND (tenant_id, id) IN (SELECT tenant_id, id FROM doomed) RETURNING 1)
SELECT count(*) FROM gone;

-- name: count_prunable_workflows
SELECT count(*) FROM (
    SELECT w.tenant_id, w.id FROM hora_workflows AS w
    WHERE w.state IN ('completed', 'failed', 'cancelled')
      AND w.finished_at < %(cutoff)s
      AND (%(tenant_id)s::text IS NULL OR w.tenant_id = %(tenant_id)s::text)
      AND (%(tenant_id)s::text IS NOT NULL OR w.tenant_id <> ALL(%(exclude)s::text[]))
      AND (w.parent_id IS NULL OR NOT EXISTS (
          SELECT 1 FROM hora_workflows AS p
          WHERE p.tenant_id = w.tenant_id AND p.id = w.parent_id
            AND p.state NOT IN ('completed', 'failed', 'cancelled') OFFSET 0))
    LIMIT %(limit)s) AS prunable;

-- name: prune_idempotency
WITH doomed AS (
    SELECT i.tenant_id, i.key FROM hora_idempotency AS i
    WHERE i.created_at < %(cutoff)s
      AND (%(tenant_id)s::text IS NULL OR i.tenant_id = %(tenant_id)s::text)
      AND (%(tenant_id)s::text IS NOT NULL OR i.tenant_id <> ALL(%(exclude)s::text[]))
    ORDER BY i.created_at
    LIMIT %(limit)s
    FOR UPDATE OF i SKIP LOCKED)
DELETE FROM hora_idempotency
WHERE tenant_id = ANY (ARRAY(SELECT tenant_id FROM doomed))
  AND key = ANY (ARRAY(SELECT key FROM doomed))
  AND (tenant_id, key) IN (SELECT tenant_id, key FROM doomed);

-- name: count_prunable_idempotency
SELECT count(*) FROM (
    SELECT i.tenant_id, i.key FROM hora_idempotency AS i
    WHERE i.created_at < %(cutoff)s
      AND (%(tenant_id)s::text IS NULL OR i.tenant_id = %(tenant_id)s::text)
      AND (%(tenant_id)s::text IS NOT NULL OR i.tenant_id <> ALL(%(exclude)s::text[]))
    LIMIT %(limit)s) AS prunable;

-- name: retention_overrides
SELECT tenant_id, jobs, dead, ticks, workflows, idempotency FROM hora_retention
ORDER BY tenant_id;

-- name: set_retention
INSERT INTO hora_retention (tenant_id, jobs, dead, ticks, workflows, idempotency, updated_at)
VALUES (%(tenant_id)s, %(jobs)s, %(dead)s, %(ticks)s, %(workflows)s, %(idempotency)s, %(now)s)
ON CONFLICT (tenant_id) DO UPDATE
SET jobs = excluded.jobs, dead = excluded.dead, ticks = excluded.ticks,
    workflows = excluded.workflows, idempotency = excluded.idempotency,
    updated_at = excluded.updated_at;

-- name: clear_retention
DELETE FROM hora_retention WHERE tenant_id = %(tenant_id)s;
