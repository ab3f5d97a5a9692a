-- The task and workflow registry (hora_task_registry), and the end of a workflow's jobs.

-- name: upsert_registered_task
INSERT INTO hora_task_registry (tenant_id, kind, name, queue, priority, max_attempts,
                                retry_policy, timeout, payload_schema, registered_at,
                                updated_at, flow)
VALUES (:tenant_id, :kind, :name, :queue, :priority, :max_attempts, :retry_policy, :timeout,
        :payload_schema, :now, :now, :flow)
ON CONFLICT (tenant_id, kind, name) DO UPDATE
SET queue = excluded.queue, priority = excluded.priority,
    max_attempts = excluded.max_attempts, retry_policy = excluded.retry_policy,
    timeout = excluded.timeout, payload_schema = excluded.payload_schema,
    updated_at = excluded.updated_at, flow = excluded.flow;

-- name: get_registered_task
SELECT * FROM hora_task_registry
WHERE tenant_id = :tenant_id AND kind = :kind AND name = :name;

-- name: list_registered_tasks
SELECT * FROM hora_task_registry
WHERE tenant_id = :tenant_id AND (:kind IS NULL OR kind = :kind)
ORDER BY kind, name
LIMIT :limit;

-- name: cancel_workflow_jobs
-- The waiting runs of one workflow (its timers, wake-ups, resumes): jobs of its runner task
-- whose idempotency key starts with "wf:<id>:", found through the correlation index (every
-- run of a workflow carries its correlation id). The job running now is left to end.
UPDATE hora_jobs
SET state = 'cancelled', lease_owner = NULL, lease_expires_at = NULL, state_reason = :reason,
    updated_at = :now, finished_at = :now
WHERE tenant_id = :tenant_id AND correlation_id = :correlation_id AND task = :task
  AND state IN ('scheduled', 'retrying')
  AND substr(idempotency_key, 1, :prefix_length) = :prefix;

-- name: terminate_workflow
-- Ends the workflow now, whoever holds its run: no compensation runs.
UPDATE hora_workflows
SET state = 'cancelled', cancel_requested = 1, cancel_reason = :reason, error = :error,
    wait_kind = NULL, wait_name = NULL, wait_until = NULL, run_owner = NULL,
    run_until = NULL, finished_at = :now, updated_at = :now, version = version + 1
WHERE tenant_id = :tenant_id AND id = :id AND state NOT IN ('completed', 'failed', 'cancelled')
RETURNING *;

-- name: probe_registered_task
-- One read for an enqueue: the entry named :name if there is one (hit = 1), else any one
-- entry of that kind (hit = 0: the name is unknown but the registry is not empty), else none.
SELECT * FROM (
    SELECT *, 1 AS hit FROM hora_task_registry
    WHERE tenant_id = :tenant_id AND kind = :kind AND name = :name
    UNION ALL
    SELECT * FROM (SELECT *, 0 AS hit FROM hora_task_registry
                   WHERE tenant_id = :tenant_id AND kind = :kind LIMIT 1) AS anyone
) AS found
ORDER BY hit DESC
LIMIT 1;
