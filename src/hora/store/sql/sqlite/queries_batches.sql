-- Batching (hora.batching, docs/flow.md "Batching"): due jobs of batched tasks are leased
-- without changing state, buffered by the worker per key, and started a batch at a time.

-- name: reserve_due
-- Due jobs of the batched tasks, oldest first (in the due index's order: no sort of the
-- backlog, which a tie-break on priority and id cost at 100,000 due jobs), leased to the
-- worker and still waiting (an expired lease makes them claimable again: a dead worker's
-- buffer comes back).
UPDATE hora_jobs
SET lease_owner = :owner, lease_expires_at = :lease_until
WHERE id IN (
    SELECT id FROM hora_jobs INDEXED BY hora_jobs_due
    WHERE state IN ('scheduled', 'retrying') AND due_at <= :now
      AND queue IN (SELECT value FROM json_each(:queues))
      AND task IN (SELECT value FROM json_each(:tasks))
      AND (lease_expires_at IS NULL OR lease_expires_at <= :now)
      AND NOT EXISTS (SELECT 1 FROM hora_queues p WHERE p.tenant_id = hora_jobs.tenant_id
                      AND p.name = hora_jobs.queue AND p.paused = 1)
    ORDER BY due_at
    LIMIT :limit)
RETURNING id, task, payload, attempt, max_attempts, retry_policy, timeout, correlation_id,
          tenant_id, due_at, priority;

-- name: start_batch
-- One statement for the whole batch: running, attempt + 1, one lease. Jobs cancelled (or
-- whose reservation was taken) since they were buffered are left out of RETURNING.
UPDATE hora_jobs
SET state = 'running', attempt = attempt + 1, lease_expires_at = :lease_until,
    started_at = :now, updated_at = :now, state_reason = NULL, cancel_requested = 0
WHERE id IN (SELECT value FROM json_each(:ids))
  AND state IN ('scheduled', 'retrying') AND lease_owner = :owner
RETURNING id;

-- name: mark_batching
-- Why a buffered job waits ('batching: provider=ses'), for GET /v1/jobs; run once per job
-- (executemany: a primary-key probe each). Not a transition: no event.
UPDATE hora_jobs SET state_reason = :reason
WHERE id = :id AND lease_owner = :owner AND state IN ('scheduled', 'retrying');
