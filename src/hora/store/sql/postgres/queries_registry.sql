-- The task and workflow registry (hora_task_registry), and the end of a workflow's jobs.

-- name: upsert_registered_task
INSERT INTO hora_task_registry (tenant_id, kind, name, queue, priority, max_attempts,
                                retry_policy, timeout, payload_schema, registered_at,
                                updated_at, flow)
VALUES (%(tenant_id)s, %(kind)s, %(name)s, %(queue)s, %(priority)s, %(max_attempts)s, %(retry_policy)s, %(timeout)s,
        %(payload_schema)s, %(now)s, %(now)s, %(flow)s)
ON CONFLICT (tenant_id, kind, name) DO UPDATE
SET queue = excluded.queue, priority = excluded.priority,
    max_attempts = excluded.max_attempts, retry_policy = excluded.retry_policy,
    timeout = excluded.timeout, payload_schema = excluded.payload_schema,
    updated_at = excluded.updated_at, flow = excluded.flow;

-- name: get_registered_task
SELECT * FROM hora_task_registry
WHERE tenant_id = %(tenant_id)s AND kind = %(kind)s AND name = %(name)s;

-- name: list_registered_tasks
SELECT * FROM hora_task_registry
WHERE tenant_id = %(tenant_id)s AND (%(kind)s::text IS NULL OR kind = %(kind)s)
ORDER BY kind, name
LIMIT %(limit)s;

-- name: cancel_workflow_jobs
-- The waiting runs of one workflow (its timers, wake-ups, resumes): jobs of its runner task
-- whose idempotency key starts with "wf:<id>:", found through the correlation index (every
-- run of a workflow carries its correlation id). The job running now is left to end.
UPDATE hora_jobs
SET state = 'cancelled', lease_owner = NULL, lease_expires_at = NULL, state_reason = %(reason)s,
    updated_at = %(now)s, finished_at = %(now)s
WHERE tenant_id = %(tenant_id)s AND correlation_id = %(correlation_id)s AND task = %(task)s
  AND state IN ('scheduled', 'retrying')
  AND left(idempotency_key, %(prefix_length)s) = %(prefix)s;

-- name: terminate_workflow
-- Ends the workflow now, whoever holds its run: no compensation runs.
UPDATE hora_workflows
SET state = 'cancelled', cancel_requested = true, cancel_reason = %(reason)s, error = %(error)s::jsonb,
    wait_kind = NULL, wait_name = NULL, wait_until = NULL, run_owner = NULL,
    run_until = NULL, finished_at = %(now)s, updated_at = %(now)s, version = version + 1
WHERE tenant_id = %(tenant_id)s AND id = %(id)s AND state NOT IN ('completed', 'failed', 'cancelled')
RETURNING *;

-- name: probe_registered_task
-- One read for an enqueue: the entry named :name if there is one (hit = 1), else any one
-- entry of that kind (hit = 0: the name is unknown but the registry is not empty), else none.
SELECT * FROM (
    SELECT *, 1 AS hit FROM hora_task_registry
    WHERE tenant_id = %(tenant_id)s AND kind = %(kind)s AND name = %(name)s
    UNION ALL
    SELECT * FROM (SELECT *, 0 AS hit FROM hora_task_registry
                   WHERE tenant_id = %(tenant_id)s AND kind = %(kind)s LIMIT 1) AS anyone
) AS found
ORDER BY hit DESC
LIMIT 1;
