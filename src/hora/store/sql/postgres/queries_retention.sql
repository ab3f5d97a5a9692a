-- Retention: bounded prunes of old finished records, one short transaction per batch.
-- Every batch reads the head of a partial index by age (ORDER BY the indexed instant, LIMIT)
-- and locks what it deletes with FOR UPDATE SKIP LOCKED, so it never waits on a worker's
-- transaction and its cost follows the batch, not the table. A batch is for one tenant
-- (tenant_id) or for every tenant but those with their own policy (tenant_id NULL, exclude).
-- Each prune is one statement: the records and what hangs off them go together.

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
            AND w.state NOT IN ('completed', 'failed', 'cancelled')))
    ORDER BY j.finished_at
    LIMIT %(limit)s
    FOR UPDATE OF j SKIP LOCKED),
gone AS (DELETE FROM hora_jobs AS j USING doomed WHERE j.id = doomed.id RETURNING j.id),
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
            AND w.state NOT IN ('completed', 'failed', 'cancelled')))
    ORDER BY j.finished_at
    LIMIT %(limit)s
    FOR UPDATE OF j SKIP LOCKED),
gone AS (DELETE FROM hora_jobs AS j USING doomed WHERE j.id = doomed.id RETURNING j.id),
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
            AND w.state NOT IN ('completed', 'failed', 'cancelled')))
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
            AND w.state NOT IN ('completed', 'failed', 'cancelled')))
    LIMIT %(limit)s) AS prunable;

-- name: prune_ticks
-- Ticks whose occurrence (nominal instant) is older than the cutoff: per schedule, a range of
-- the ledger's primary key (schedule_id, nominal).
WITH doomed AS (
    SELECT t.schedule_id, t.nominal
    FROM hora_schedules AS s JOIN hora_schedule_ticks AS t ON t.schedule_id = s.id
    WHERE t.nominal < %(cutoff)s
      AND (%(tenant_id)s::text IS NULL OR s.tenant_id = %(tenant_id)s::text)
      AND (%(tenant_id)s::text IS NOT NULL OR s.tenant_id <> ALL(%(exclude)s::text[]))
    LIMIT %(limit)s
    FOR UPDATE OF t SKIP LOCKED)
DELETE FROM hora_schedule_ticks AS t USING doomed
WHERE t.schedule_id = doomed.schedule_id AND t.nominal = doomed.nominal;

-- name: count_prunable_ticks
SELECT count(*) FROM (
    SELECT t.schedule_id, t.nominal
    FROM hora_schedules AS s JOIN hora_schedule_ticks AS t ON t.schedule_id = s.id
    WHERE t.nominal < %(cutoff)s
      AND (%(tenant_id)s::text IS NULL OR s.tenant_id = %(tenant_id)s::text)
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
            AND p.state NOT IN ('completed', 'failed', 'cancelled')))
    ORDER BY w.finished_at
    LIMIT %(limit)s
    FOR UPDATE OF w SKIP LOCKED),
history AS (DELETE FROM hora_workflow_history AS x USING doomed AS d
            WHERE x.tenant_id = d.tenant_id AND x.workflow_id = d.id),
signals AS (DELETE FROM hora_workflow_signals AS x USING doomed AS d
            WHERE x.tenant_id = d.tenant_id AND x.workflow_id = d.id),
approvals AS (DELETE FROM hora_approvals AS x USING doomed AS d
              WHERE x.tenant_id = d.tenant_id AND x.workflow_id = d.id),
gone AS (DELETE FROM hora_workflows AS x USING doomed AS d
         WHERE x.tenant_id = d.tenant_id AND x.id = d.id RETURNING 1)
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
            AND p.state NOT IN ('completed', 'failed', 'cancelled')))
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
DELETE FROM hora_idempotency AS i USING doomed
WHERE i.tenant_id = doomed.tenant_id AND i.key = doomed.key;

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
