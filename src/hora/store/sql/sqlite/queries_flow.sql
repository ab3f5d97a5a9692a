-- Flow control in the claim: rate limits and concurrency limits (hora.store.gating,
-- docs/flow.md). Lists arrive as JSON arrays; keys of several parts as arrays of arrays.

-- name: due_in_queue_flow
-- due_in_queue, with what the gates need: the job's gates (flow), its tenant and queue, and
-- whether an operator limits its queue (a 'queue:<name>' row: one primary-key probe). Jobs
-- never passed over by a gate (blocked_on NULL); returning_in_queue_flow reads the others.
SELECT id, priority, due_at, flow, tenant_id, queue, blocked_on,
       EXISTS (SELECT 1 FROM hora_rate_limits r WHERE r.tenant_id = hora_jobs.tenant_id
               AND r.name = 'queue:' || hora_jobs.queue) AS queue_limited
FROM hora_jobs INDEXED BY hora_jobs_claim
WHERE queue = :queue AND state IN ('scheduled', 'retrying') AND due_at <= :now
  AND blocked_on IS NULL
  AND (:tasks IS NULL OR task IN (SELECT value FROM json_each(:tasks)))
  AND (lease_expires_at IS NULL OR lease_expires_at <= :now)
  AND NOT EXISTS (SELECT 1 FROM hora_queues p WHERE p.tenant_id = hora_jobs.tenant_id
                  AND p.name = hora_jobs.queue AND p.paused = 1)
ORDER BY priority, due_at, id
LIMIT :limit

-- name: returning_in_queue_flow
-- The due jobs of one queue a gate passed over before (back on their slot, or woken when
-- their concurrency key freed), from their own small index; read up to :back_until (the
-- claim's gate_ahead) before they are due, to start on their instant if the gates admit.
SELECT id, priority, due_at, flow, tenant_id, queue, blocked_on,
       EXISTS (SELECT 1 FROM hora_rate_limits r WHERE r.tenant_id = hora_jobs.tenant_id
               AND r.name = 'queue:' || hora_jobs.queue) AS queue_limited
FROM hora_jobs INDEXED BY hora_jobs_returning
WHERE queue = :queue AND state IN ('scheduled', 'retrying') AND due_at <= :back_until
  AND blocked_on IS NOT NULL
  AND (:tasks IS NULL OR task IN (SELECT value FROM json_each(:tasks)))
  AND (lease_expires_at IS NULL OR lease_expires_at <= :now)
  AND NOT EXISTS (SELECT 1 FROM hora_queues p WHERE p.tenant_id = hora_jobs.tenant_id
                  AND p.name = hora_jobs.queue AND p.paused = 1)
ORDER BY priority, due_at, id
LIMIT :limit

-- name: claim_candidates
-- /*HEADS*/ is the union of due_in_queue_flow and returning_in_queue_flow for the worker's
-- queues. Within a priority, jobs back from a gate come first (they were in line first).
SELECT id, flow, tenant_id, queue, queue_limited, blocked_on, due_at FROM (/*HEADS*/)
ORDER BY priority, blocked_on IS NULL, due_at, id LIMIT :limit

-- name: start_jobs
-- :ids is [[id, start instant], ...]: a job a gate admits a little ahead starts at that
-- instant (due then, held by the worker until then); the others at :now.
UPDATE hora_jobs
SET state = 'running', attempt = attempt + 1, lease_owner = :owner,
    lease_expires_at = :lease_until, started_at = s.at, updated_at = :now,
    due_at = max(due_at, s.at),
    state_reason = NULL, blocked_on = NULL, cancel_requested = 0
FROM (SELECT value ->> 0 AS id, value ->> 1 AS at FROM json_each(:ids)) AS s
WHERE hora_jobs.id = s.id AND state IN ('scheduled', 'retrying')
RETURNING id, task, payload, attempt, max_attempts, retry_policy, timeout, correlation_id,
          tenant_id, due_at, priority;

-- name: rate_overrides
SELECT tenant_id, name, count, period, burst FROM hora_rate_limits
WHERE (tenant_id, name) IN (SELECT value ->> 0, value ->> 1 FROM json_each(:keys));

-- name: rate_buckets
SELECT tenant_id, name, key, tat, slot FROM hora_rate_buckets
WHERE (tenant_id, name, key) IN (SELECT value ->> 0, value ->> 1, value ->> 2
                                 FROM json_each(:keys));

-- name: save_buckets
INSERT INTO hora_rate_buckets (tenant_id, name, key, tat, slot)
SELECT value ->> 0, value ->> 1, value ->> 2, value ->> 3, value ->> 4 FROM json_each(:rows)
WHERE true
ON CONFLICT (tenant_id, name, key) DO UPDATE SET tat = excluded.tat, slot = excluded.slot;

-- name: running_counts
SELECT tenant_id, concurrency_key, count(*) FROM hora_jobs
WHERE (tenant_id, concurrency_key) IN (SELECT value ->> 0, value ->> 1 FROM json_each(:keys))
  AND state = 'running'
GROUP BY tenant_id, concurrency_key;

-- name: block_jobs
-- Jobs a gate passed over: due again at their slot (rate) or parked (concurrency), with why.
UPDATE hora_jobs
SET due_at = b.due_at, state_reason = b.reason, blocked_on = b.blocked_on,
    lease_owner = NULL, lease_expires_at = NULL, updated_at = :now
FROM (SELECT value ->> 0 AS id, value ->> 1 AS due_at, value ->> 2 AS reason,
             value ->> 3 AS blocked_on FROM json_each(:rows)) AS b
WHERE hora_jobs.id = b.id AND hora_jobs.state IN ('scheduled', 'retrying');

-- name: cancel_gated
UPDATE hora_jobs
SET state = 'cancelled', lease_owner = NULL, lease_expires_at = NULL, state_reason = :reason,
    blocked_on = NULL, updated_at = :now, finished_at = :now
WHERE id = :id AND state IN ('scheduled', 'retrying');

-- name: supersede_running
UPDATE hora_jobs SET cancel_requested = 1, state_reason = :reason, updated_at = :now
WHERE tenant_id = :tenant_id AND concurrency_key = :key AND state = 'running' AND id <> :id;

-- name: supersede_waiting
UPDATE hora_jobs
SET state = 'cancelled', lease_owner = NULL, lease_expires_at = NULL, state_reason = :reason,
    blocked_on = NULL, updated_at = :now, finished_at = :now
WHERE tenant_id = :tenant_id AND concurrency_key = :key AND state IN ('scheduled', 'retrying')
  AND id < :id;

-- name: concurrency_keys_of
SELECT tenant_id, concurrency_key FROM hora_jobs
WHERE id IN (SELECT value FROM json_each(:ids)) AND concurrency_key IS NOT NULL;

-- name: wake_parked
-- A job of the key left running: the next parked ones (FIFO: lowest id) are due now.
UPDATE hora_jobs SET due_at = :now, updated_at = :now
WHERE id IN (SELECT id FROM hora_jobs
             WHERE tenant_id = :tenant_id AND concurrency_key = :key
               AND state IN ('scheduled', 'retrying') AND due_at > :now
               AND blocked_on LIKE 'concurrency:%'
             ORDER BY id LIMIT :n);

-- name: job_flow
SELECT flow, concurrency_key FROM hora_jobs WHERE id = :id;

-- name: task_flow
-- A registered task's flow options, for a scheduler pass firing a task its process does not
-- define (read in the pass's own transaction).
SELECT flow FROM hora_task_registry
WHERE tenant_id = :tenant_id AND kind = 'task' AND name = :name;
