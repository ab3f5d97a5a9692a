-- Batching (hora.batching, docs/flow.md "Batching"): due jobs of batched tasks are leased
-- without changing state, buffered by the worker per key, and started a batch at a time.

-- name: reserve_due
-- Due jobs of the batched tasks, oldest first (in the due index's order: no sort of the
-- backlog, which a tie-break on priority and id cost at 100,000 due jobs), leased to the
-- worker and still waiting (an expired lease makes them claimable again: a dead worker's
-- buffer comes back).
-- SKIP LOCKED: concurrent workers take disjoint jobs.
WITH due AS (
    SELECT id FROM hora_jobs
    WHERE state IN ('scheduled', 'retrying') AND due_at <= %(now)s
      AND queue = ANY(%(queues)s::text[])
      AND task = ANY(%(tasks)s::text[])
      AND (lease_expires_at IS NULL OR lease_expires_at <= %(now)s)
      AND NOT EXISTS (SELECT 1 FROM hora_queues p WHERE p.tenant_id = hora_jobs.tenant_id
                      AND p.name = hora_jobs.queue AND p.paused)
    ORDER BY due_at
    LIMIT %(limit)s
    FOR UPDATE SKIP LOCKED)
UPDATE hora_jobs j
SET lease_owner = %(owner)s, lease_expires_at = %(lease_until)s
FROM due
WHERE j.id = due.id
RETURNING j.id, j.task, j.payload, j.attempt, j.max_attempts, j.retry_policy, j.timeout,
          j.correlation_id, j.tenant_id, j.due_at, j.priority;

-- name: start_batch
-- One statement for the whole batch: running, attempt + 1, one lease; rows locked in id
-- order (as every multi-row statement of the worker). Jobs cancelled (or whose reservation
-- was taken) since they were buffered are left out of RETURNING. = ANY(ARRAY(...)): the
-- locked ids once (an InitPlan), then a primary-key probe each, whatever the planner
-- believes of a fresh backlog (a join on the CTE was a nested loop: 1,000 x 1,000 rows).
WITH mine AS (
    SELECT id FROM hora_jobs
    WHERE id = ANY(%(ids)s::text[]) AND state IN ('scheduled', 'retrying')
      AND lease_owner = %(owner)s
    ORDER BY id
    FOR UPDATE)
UPDATE hora_jobs j
SET state = 'running', attempt = j.attempt + 1, lease_expires_at = %(lease_until)s,
    started_at = %(now)s, updated_at = %(now)s, state_reason = NULL, cancel_requested = false
WHERE j.id = ANY(ARRAY(SELECT id FROM mine))
  AND j.state IN ('scheduled', 'retrying') AND j.lease_owner = %(owner)s
RETURNING j.id;

-- name: mark_batching
-- Why a buffered job waits ('batching: provider=ses'), for GET /v1/jobs. Not a transition.
WITH mine AS (
    SELECT id FROM hora_jobs
    WHERE id = ANY(%(ids)s::text[]) AND lease_owner = %(owner)s
      AND state IN ('scheduled', 'retrying')
    ORDER BY id
    FOR UPDATE)
UPDATE hora_jobs j SET state_reason = r.reason
FROM unnest(%(ids)s::text[], %(reasons)s::text[]) AS r (id, reason)
WHERE j.id = ANY(ARRAY(SELECT id FROM mine)) AND j.id = r.id;
