-- Retention: bounded prunes of old finished records, one short write transaction per batch.
-- Every batch reads the head of a partial index by age (ORDER BY the indexed instant, LIMIT),
-- so its cost follows the batch, not the table. A batch is for one tenant (:tenant_id) or
-- for every tenant but those with their own policy (:tenant_id NULL, :exclude a JSON array).

-- name: prune_jobs
-- Finished jobs (not dead letters). A workflow's own job (task hora.workflow:*) goes only once
-- its workflow has finished (or is gone): a live workflow's run and timer jobs hold the
-- idempotency keys that keep it from being woken twice.
DELETE FROM hora_jobs WHERE id IN (
    SELECT j.id FROM hora_jobs AS j INDEXED BY hora_jobs_finished
    WHERE j.state IN ('succeeded', 'cancelled', 'discarded', 'replayed')
      AND j.finished_at < :cutoff
      AND (:tenant_id IS NULL OR j.tenant_id = :tenant_id)
      AND (:tenant_id IS NOT NULL OR j.tenant_id NOT IN (SELECT value FROM json_each(:exclude)))
      AND (substr(j.task, 1, 14) <> 'hora.workflow:' OR NOT EXISTS (
          SELECT 1 FROM hora_workflows AS w
          WHERE w.tenant_id = j.tenant_id AND w.id = json_extract(j.payload, '$.workflow_id')
            AND w.state NOT IN ('completed', 'failed', 'cancelled')))
    ORDER BY j.finished_at
    LIMIT :limit)
RETURNING id;

-- name: prune_dead
-- Dead letters, on their own (longer) retention.
DELETE FROM hora_jobs WHERE id IN (
    SELECT j.id FROM hora_jobs AS j INDEXED BY hora_jobs_dead_finished
    WHERE j.state = 'dead'
      AND j.finished_at < :cutoff
      AND (:tenant_id IS NULL OR j.tenant_id = :tenant_id)
      AND (:tenant_id IS NOT NULL OR j.tenant_id NOT IN (SELECT value FROM json_each(:exclude)))
      AND (substr(j.task, 1, 14) <> 'hora.workflow:' OR NOT EXISTS (
          SELECT 1 FROM hora_workflows AS w
          WHERE w.tenant_id = j.tenant_id AND w.id = json_extract(j.payload, '$.workflow_id')
            AND w.state NOT IN ('completed', 'failed', 'cancelled')))
    ORDER BY j.finished_at
    LIMIT :limit)
RETURNING id;

-- name: prune_job_attempts
DELETE FROM hora_job_attempts WHERE job_id IN (SELECT value FROM json_each(:ids));

-- name: prune_job_events
DELETE FROM hora_job_events WHERE job_id IN (SELECT value FROM json_each(:ids));

-- name: count_prunable_jobs
SELECT count(*) FROM (
    SELECT 1 FROM hora_jobs AS j INDEXED BY hora_jobs_finished
    WHERE j.state IN ('succeeded', 'cancelled', 'discarded', 'replayed')
      AND j.finished_at < :cutoff
      AND (:tenant_id IS NULL OR j.tenant_id = :tenant_id)
      AND (:tenant_id IS NOT NULL OR j.tenant_id NOT IN (SELECT value FROM json_each(:exclude)))
      AND (substr(j.task, 1, 14) <> 'hora.workflow:' OR NOT EXISTS (
          SELECT 1 FROM hora_workflows AS w
          WHERE w.tenant_id = j.tenant_id AND w.id = json_extract(j.payload, '$.workflow_id')
            AND w.state NOT IN ('completed', 'failed', 'cancelled')))
    LIMIT :limit);

-- name: count_prunable_dead
SELECT count(*) FROM (
    SELECT 1 FROM hora_jobs AS j INDEXED BY hora_jobs_dead_finished
    WHERE j.state = 'dead'
      AND j.finished_at < :cutoff
      AND (:tenant_id IS NULL OR j.tenant_id = :tenant_id)
      AND (:tenant_id IS NOT NULL OR j.tenant_id NOT IN (SELECT value FROM json_each(:exclude)))
      AND (substr(j.task, 1, 14) <> 'hora.workflow:' OR NOT EXISTS (
          SELECT 1 FROM hora_workflows AS w
          WHERE w.tenant_id = j.tenant_id AND w.id = json_extract(j.payload, '$.workflow_id')
            AND w.state NOT IN ('completed', 'failed', 'cancelled')))
    LIMIT :limit);

-- name: prune_ticks
-- Ticks whose occurrence (nominal instant) is older than the cutoff: per schedule, a range of
-- the ledger's primary key (schedule_id, nominal). CROSS JOIN keeps the schedules outside:
-- SQLite never reorders it, so the ticks are always read by their key, never scanned.
DELETE FROM hora_schedule_ticks WHERE (schedule_id, nominal) IN (
    SELECT t.schedule_id, t.nominal
    FROM hora_schedules AS s CROSS JOIN hora_schedule_ticks AS t
    WHERE t.schedule_id = s.id AND t.nominal < :cutoff
      AND (:tenant_id IS NULL OR s.tenant_id = :tenant_id)
      AND (:tenant_id IS NOT NULL OR s.tenant_id NOT IN (SELECT value FROM json_each(:exclude)))
    LIMIT :limit);

-- name: count_prunable_ticks
SELECT count(*) FROM (
    SELECT 1 FROM hora_schedules AS s CROSS JOIN hora_schedule_ticks AS t
    WHERE t.schedule_id = s.id AND t.nominal < :cutoff
      AND (:tenant_id IS NULL OR s.tenant_id = :tenant_id)
      AND (:tenant_id IS NOT NULL OR s.tenant_id NOT IN (SELECT value FROM json_each(:exclude)))
    LIMIT :limit);

-- name: prunable_workflows
-- Finished workflows, oldest first; a child goes only once its parent has finished too (the
-- parent's run may still read it).
SELECT w.tenant_id, w.id FROM hora_workflows AS w INDEXED BY hora_workflows_finished
WHERE w.state IN ('completed', 'failed', 'cancelled')
  AND w.finished_at < :cutoff
  AND (:tenant_id IS NULL OR w.tenant_id = :tenant_id)
  AND (:tenant_id IS NOT NULL OR w.tenant_id NOT IN (SELECT value FROM json_each(:exclude)))
  AND (w.parent_id IS NULL OR NOT EXISTS (
      SELECT 1 FROM hora_workflows AS p
      WHERE p.tenant_id = w.tenant_id AND p.id = w.parent_id
        AND p.state NOT IN ('completed', 'failed', 'cancelled')))
ORDER BY w.finished_at
LIMIT :limit;

-- name: prune_workflow_rows
-- :keys is a JSON array of [tenant_id, workflow_id] pairs (from prunable_workflows).
DELETE FROM hora_workflows WHERE (tenant_id, id) IN (
    SELECT value ->> 0, value ->> 1 FROM json_each(:keys));

-- name: prune_workflow_history
DELETE FROM hora_workflow_history WHERE (tenant_id, workflow_id) IN (
    SELECT value ->> 0, value ->> 1 FROM json_each(:keys));

-- name: prune_workflow_signals
DELETE FROM hora_workflow_signals WHERE (tenant_id, workflow_id) IN (
    SELECT value ->> 0, value ->> 1 FROM json_each(:keys));

-- name: prune_workflow_approvals
DELETE FROM hora_approvals WHERE (tenant_id, workflow_id) IN (
    SELECT value ->> 0, value ->> 1 FROM json_each(:keys));

-- name: count_prunable_workflows
SELECT count(*) FROM (
    SELECT 1 FROM hora_workflows AS w INDEXED BY hora_workflows_finished
    WHERE w.state IN ('completed', 'failed', 'cancelled')
      AND w.finished_at < :cutoff
      AND (:tenant_id IS NULL OR w.tenant_id = :tenant_id)
      AND (:tenant_id IS NOT NULL OR w.tenant_id NOT IN (SELECT value FROM json_each(:exclude)))
      AND (w.parent_id IS NULL OR NOT EXISTS (
          SELECT 1 FROM hora_workflows AS p
          WHERE p.tenant_id = w.tenant_id AND p.id = w.parent_id
            AND p.state NOT IN ('completed', 'failed', 'cancelled')))
    LIMIT :limit);

-- name: prune_idempotency
DELETE FROM hora_idempotency WHERE (tenant_id, key) IN (
    SELECT tenant_id, key FROM hora_idempotency INDEXED BY hora_idempotency_created
    WHERE created_at < :cutoff
      AND (:tenant_id IS NULL OR tenant_id = :tenant_id)
      AND (:tenant_id IS NOT NULL OR tenant_id NOT IN (SELECT value FROM json_each(:exclude)))
    ORDER BY created_at
    LIMIT :limit);

-- name: count_prunable_idempotency
SELECT count(*) FROM (
    SELECT 1 FROM hora_idempotency INDEXED BY hora_idempotency_created
    WHERE created_at < :cutoff
      AND (:tenant_id IS NULL OR tenant_id = :tenant_id)
      AND (:tenant_id IS NOT NULL OR tenant_id NOT IN (SELECT value FROM json_each(:exclude)))
    LIMIT :limit);

-- name: retention_overrides
SELECT tenant_id, jobs, dead, ticks, workflows, idempotency FROM hora_retention
ORDER BY tenant_id;

-- name: set_retention
INSERT INTO hora_retention (tenant_id, jobs, dead, ticks, workflows, idempotency, updated_at)
VALUES (:tenant_id, :jobs, :dead, :ticks, :workflows, :idempotency, :now)
ON CONFLICT (tenant_id) DO UPDATE
SET jobs = excluded.jobs, dead = excluded.dead, ticks = excluded.ticks,
    workflows = excluded.workflows, idempotency = excluded.idempotency,
    updated_at = excluded.updated_at;

-- name: clear_retention
DELETE FROM hora_retention WHERE tenant_id = :tenant_id;
