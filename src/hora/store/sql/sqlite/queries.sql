-- Named queries for the SQLite store. Instants are microseconds since the epoch (UTC).
-- Lists (queues, tasks, states) arrive as JSON arrays and are unpacked with json_each.

-- name: insert_job
INSERT INTO hora_jobs (id, tenant_id, task, payload, fingerprint, queue, priority, state, due_at,
                       max_attempts, retry_policy, timeout, idempotency_key, correlation_id,
                       replay_of, state_reason, created_at, updated_at, schedule_id, flow,
                       concurrency_key)
VALUES (:id, :tenant_id, :task, :payload, :fingerprint, :queue, :priority, 'scheduled', :due_at,
        :max_attempts, :retry_policy, :timeout, :idempotency_key, :correlation_id,
        :replay_of, :state_reason, :now, :now, :schedule_id, :flow, :concurrency_key)
ON CONFLICT (tenant_id, idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING;

-- name: job_by_idempotency_key
SELECT id, fingerprint FROM hora_jobs WHERE tenant_id = :tenant_id AND idempotency_key = :key;

-- name: reserve_upcoming
-- Jobs due within the horizon are leased without changing state, so the worker can hold them
-- in a timer and start them on the instant; an expired reservation is claimable again.
UPDATE hora_jobs
SET lease_owner = :owner, lease_expires_at = :lease_until
WHERE id IN (
    SELECT id FROM hora_jobs INDEXED BY hora_jobs_reservable
    WHERE state IN ('scheduled', 'retrying')
      AND queue IN (SELECT value FROM json_each(:queues))
      AND (:tasks IS NULL OR task IN (SELECT value FROM json_each(:tasks)))
      AND due_at > :now AND due_at <= :horizon
      AND (lease_expires_at IS NULL OR lease_expires_at <= :now)
      AND NOT EXISTS (SELECT 1 FROM hora_queues p WHERE p.tenant_id = hora_jobs.tenant_id
                      AND p.name = hora_jobs.queue AND p.paused = 1)
      -- a gated job starts only through the claim, which checks its gates
      AND flow IS NULL
      AND NOT EXISTS (SELECT 1 FROM hora_rate_limits r WHERE r.tenant_id = hora_jobs.tenant_id
                      AND r.name = 'queue:' || hora_jobs.queue)
    ORDER BY due_at, priority, id
    LIMIT :limit)
RETURNING id, task, payload, attempt, max_attempts, retry_policy, timeout, correlation_id,
          tenant_id, due_at, priority;

-- name: start_reserved
UPDATE hora_jobs
SET state = 'running', attempt = attempt + 1, lease_expires_at = :lease_until,
    started_at = :now, updated_at = :now, state_reason = NULL, blocked_on = NULL,
    cancel_requested = 0
WHERE id = :id AND state IN ('scheduled', 'retrying') AND lease_owner = :owner
RETURNING id;

-- name: finish_jobs
-- One statement per batch; :batch is a JSON array of outcomes. Guarded by owner and attempt:
-- a worker whose lease was lost cannot complete the job again.
UPDATE hora_jobs
SET state = o.state, due_at = COALESCE(o.due_at, hora_jobs.due_at), lease_owner = NULL,
    lease_expires_at = NULL, result = o.result, last_error = COALESCE(o.error, last_error),
    state_reason = o.reason, updated_at = :now, cancel_requested = 0,
    finished_at = CASE WHEN o.state IN ('succeeded', 'cancelled', 'dead') THEN :now END
FROM (SELECT value ->> '$.id' AS id, value ->> '$.attempt' AS attempt,
             value ->> '$.owner' AS owner, value ->> '$.state' AS state,
             value ->> '$.due_at' AS due_at, value ->> '$.result' AS result,
             value ->> '$.error' AS error, value ->> '$.reason' AS reason
      FROM json_each(:batch)) AS o
WHERE hora_jobs.id = o.id AND hora_jobs.state = 'running'
  AND hora_jobs.lease_owner = o.owner AND hora_jobs.attempt = o.attempt
RETURNING hora_jobs.id, hora_jobs.tenant_id, hora_jobs.concurrency_key;

-- name: record_attempts
-- The ended attempts of the jobs finish_jobs applied (:applied lists them when some were not;
-- NULL means all were). Their start is the instant the worker started them.
INSERT INTO hora_job_attempts (job_id, attempt, worker_id, started_at, ended_at, outcome,
                               error_type, error_message, traceback, logs)
SELECT value ->> '$.id', value ->> '$.attempt', value ->> '$.owner', value ->> '$.started_at',
       :now, value ->> '$.outcome', value ->> '$.error_type', value ->> '$.error_message',
       value ->> '$.traceback', value ->> '$.logs'
FROM json_each(:batch)
WHERE :applied IS NULL OR value ->> '$.id' IN (SELECT value FROM json_each(:applied));

-- name: record_attempt
INSERT INTO hora_job_attempts (job_id, attempt, worker_id, started_at, ended_at, outcome,
                               error_type, error_message, traceback)
SELECT id, :attempt, :worker_id, started_at, :now, :outcome, :error_type, :error_message,
       :traceback
FROM hora_jobs WHERE id = :id;

-- name: extend_leases
UPDATE hora_jobs SET lease_expires_at = :lease_until
WHERE lease_owner = :owner AND state IN ('running', 'scheduled', 'retrying')
RETURNING id, state, cancel_requested;

-- name: expired_running
SELECT id, attempt, max_attempts, lease_owner, cancel_requested FROM hora_jobs
WHERE state = 'running' AND lease_owner IS NOT NULL AND lease_expires_at <= :now
ORDER BY lease_expires_at, id
LIMIT :limit;

-- name: rescue_job
UPDATE hora_jobs
SET state = :state, lease_owner = NULL, lease_expires_at = NULL, due_at = :now,
    last_error = :error, state_reason = :reason, updated_at = :now,
    cancel_requested = 0,
    finished_at = CASE WHEN :state IN ('dead', 'cancelled') THEN :now END
WHERE id = :id AND state = 'running' AND attempt = :attempt AND lease_expires_at <= :now;

-- name: release_running
UPDATE hora_jobs
SET state = 'scheduled', lease_owner = NULL, lease_expires_at = NULL, due_at = :now,
    state_reason = :reason, updated_at = :now
WHERE id = :id AND state = 'running' AND lease_owner = :owner AND attempt = :attempt;

-- name: release_reserved
UPDATE hora_jobs SET lease_owner = NULL, lease_expires_at = NULL
WHERE lease_owner = :owner AND state IN ('scheduled', 'retrying');

-- name: next_due_at
SELECT min(due_at) FROM hora_jobs INDEXED BY hora_jobs_due
WHERE state IN ('scheduled', 'retrying')
  AND queue IN (SELECT value FROM json_each(:queues))
  AND (:tasks IS NULL OR task IN (SELECT value FROM json_each(:tasks)))
  AND (lease_expires_at IS NULL OR lease_expires_at <= :now)
  AND NOT EXISTS (SELECT 1 FROM hora_queues p WHERE p.tenant_id = hora_jobs.tenant_id
                  AND p.name = hora_jobs.queue AND p.paused = 1);

-- name: get_job
SELECT * FROM hora_jobs WHERE id = :id AND tenant_id = :tenant_id;

-- name: get_attempts
SELECT job_id, attempt, worker_id, started_at, ended_at, outcome, error_type, error_message,
       traceback
FROM hora_job_attempts WHERE job_id = :id ORDER BY attempt;

-- name: get_events
SELECT id, job_id, at, from_state, to_state, attempt, reason
FROM hora_job_events WHERE job_id = :id ORDER BY id;

-- name: list_jobs
SELECT * FROM hora_jobs
WHERE tenant_id = :tenant_id
  AND (:cursor IS NULL OR id < :cursor)
  AND (:states IS NULL OR state IN (SELECT value FROM json_each(:states)))
  AND (:task IS NULL OR task = :task)
  AND (:queue IS NULL OR queue = :queue)
  AND (:correlation_id IS NULL OR correlation_id = :correlation_id)
  AND (:created_after IS NULL OR created_at >= :created_after)
  AND (:created_before IS NULL OR created_at < :created_before)
  AND (:include_internal OR substr(task, 1, 14) <> 'hora.workflow:')
ORDER BY id DESC
LIMIT :limit;

-- name: cancel_waiting
UPDATE hora_jobs
SET state = 'cancelled', lease_owner = NULL, lease_expires_at = NULL, state_reason = :reason,
    updated_at = :now, finished_at = :now
WHERE id = :id AND tenant_id = :tenant_id AND state IN ('scheduled', 'retrying');

-- name: request_cancel
UPDATE hora_jobs SET cancel_requested = 1, state_reason = :reason, updated_at = :now
WHERE id = :id AND tenant_id = :tenant_id AND state = 'running';

-- name: mark_replayed
UPDATE hora_jobs
SET state = 'replayed', replayed_as = :new_id, state_reason = :reason, updated_at = :now,
    finished_at = :now
WHERE id = :id AND tenant_id = :tenant_id AND state = 'dead';

-- name: discard_dead
UPDATE hora_jobs
SET state = 'discarded', state_reason = :reason, updated_at = :now, finished_at = :now
WHERE id = :id AND tenant_id = :tenant_id AND state = 'dead';

-- name: count_by_state
-- Internal jobs (hora.workflow:*, the runs and timers of workflows) only when asked for.
SELECT state, count(*) FROM hora_jobs
WHERE tenant_id = :tenant_id
  AND (:include_internal OR substr(task, 1, 14) <> 'hora.workflow:')
GROUP BY state;

-- name: insert_schedule
INSERT INTO hora_schedules (id, tenant_id, name, task, payload, trigger, queue, priority,
                            max_attempts, retry_policy, timeout, correlation_id, misfire_policy,
                            misfire_grace, catchup_limit, overlap_policy, state, next_fire_at,
                            cursor, created_at, updated_at)
VALUES (:id, :tenant_id, :name, :task, :payload, :trigger, :queue, :priority, :max_attempts,
        :retry_policy, :timeout, :correlation_id, :misfire_policy, :misfire_grace,
        :catchup_limit, :overlap_policy, :state, :next_fire_at, :cursor, :now, :now);

-- name: get_schedule
SELECT * FROM hora_schedules WHERE id = :id AND tenant_id = :tenant_id;

-- name: list_schedules
SELECT * FROM hora_schedules
WHERE tenant_id = :tenant_id AND (:cursor IS NULL OR id < :cursor)
  AND (:state IS NULL OR state = :state)
ORDER BY id DESC
LIMIT :limit;

-- name: update_schedule
UPDATE hora_schedules
SET name = :name, task = :task, payload = :payload, trigger = :trigger, queue = :queue,
    priority = :priority, max_attempts = :max_attempts, retry_policy = :retry_policy,
    timeout = :timeout, correlation_id = :correlation_id, misfire_policy = :misfire_policy,
    misfire_grace = :misfire_grace, catchup_limit = :catchup_limit,
    overlap_policy = :overlap_policy, state = :state, next_fire_at = :next_fire_at,
    cursor = :cursor, error = :error, updated_at = :now, version = version + 1
WHERE id = :id AND tenant_id = :tenant_id AND version = :version;

-- name: delete_schedule
DELETE FROM hora_schedules WHERE id = :id AND tenant_id = :tenant_id;

-- name: delete_ticks
DELETE FROM hora_schedule_ticks WHERE schedule_id = :id;

-- name: get_schedule_by_name
SELECT * FROM hora_schedules WHERE tenant_id = :tenant_id AND name = :name;

-- name: delete_declared_mark
DELETE FROM hora_declared_schedules WHERE schedule_id = :id;

-- name: mark_declared
INSERT INTO hora_declared_schedules (schedule_id, tenant_id, declared_at)
VALUES (:schedule_id, :tenant_id, :now)
ON CONFLICT (schedule_id) DO NOTHING;

-- name: declared_schedules
-- The tenant's schedules marked as declared in code (the mark of a deleted one is gone too).
SELECT s.* FROM hora_declared_schedules d
JOIN hora_schedules s ON s.id = d.schedule_id AND s.tenant_id = d.tenant_id
WHERE d.tenant_id = :tenant_id
ORDER BY s.id;

-- name: due_schedules
SELECT * FROM hora_schedules INDEXED BY hora_schedules_due
WHERE state = 'active' AND next_fire_at IS NOT NULL AND next_fire_at <= :now
ORDER BY next_fire_at
LIMIT :limit;

-- name: unfinished_jobs_of_schedule
SELECT id, state FROM hora_jobs
WHERE schedule_id = :schedule_id AND state IN ('scheduled', 'retrying', 'running');

-- name: advance_schedule
UPDATE hora_schedules SET cursor = :cursor, next_fire_at = :next_fire_at, updated_at = :now,
                          error = :error, version = version + 1
WHERE id = :id;

-- name: insert_tick
INSERT INTO hora_schedule_ticks (schedule_id, nominal, fire_at, outcome, reason, job_id,
                                 recorded_at)
VALUES (:schedule_id, :nominal, :fire_at, :outcome, :reason, :job_id, :now)
ON CONFLICT (schedule_id, nominal) DO NOTHING;

-- name: list_ticks
SELECT schedule_id, nominal, fire_at, outcome, reason, job_id, recorded_at
FROM hora_schedule_ticks
WHERE schedule_id = :schedule_id AND (:cursor IS NULL OR nominal < :cursor)
  AND (:outcome IS NULL OR outcome = :outcome)
ORDER BY nominal DESC
LIMIT :limit;

-- name: next_schedule_fire
SELECT min(next_fire_at) FROM hora_schedules INDEXED BY hora_schedules_due
WHERE state = 'active' AND next_fire_at IS NOT NULL;

-- name: insert_tenant
INSERT INTO hora_tenants (id, name, webhook_secret, max_pending_jobs, max_active_schedules,
                          rate_limit, created_at, updated_at)
VALUES (:id, :name, :webhook_secret, :max_pending_jobs, :max_active_schedules, :rate_limit,
        :created_at, :updated_at)
ON CONFLICT (id) DO NOTHING;

-- name: get_tenant
SELECT * FROM hora_tenants WHERE id = :id;

-- name: list_tenants
SELECT * FROM hora_tenants
WHERE (:cursor IS NULL OR id > :cursor)
ORDER BY id
LIMIT :limit;

-- name: update_tenant
UPDATE hora_tenants
SET name = :name, max_pending_jobs = :max_pending_jobs,
    max_active_schedules = :max_active_schedules, rate_limit = :rate_limit,
    updated_at = :updated_at
WHERE id = :id;

-- name: insert_api_key
INSERT INTO hora_api_keys (id, tenant_id, name, prefix, key_hash, scopes, created_at,
                           revoked_at, expires_at)
VALUES (:id, :tenant_id, :name, :prefix, :key_hash, :scopes, :created_at, :revoked_at,
        :expires_at)
ON CONFLICT DO NOTHING;

-- name: get_api_key
SELECT * FROM hora_api_keys WHERE id = :id;

-- name: api_key_by_hash
SELECT * FROM hora_api_keys WHERE key_hash = :key_hash;

-- name: list_api_keys
-- Newest first (ids are UUIDv7 strings, which sort by creation time).
SELECT * FROM hora_api_keys
WHERE (:tenant_id IS NULL OR tenant_id = :tenant_id) AND (:cursor IS NULL OR id < :cursor)
ORDER BY id DESC
LIMIT :limit;

-- name: revoke_api_key
-- Revoking twice keeps the first instant.
UPDATE hora_api_keys SET revoked_at = COALESCE(revoked_at, :now) WHERE id = :id;

-- name: count_api_keys
SELECT count(*) FROM hora_api_keys;

-- name: unrevoked_operator_keys
-- Few rows: the keys that manage every tenant (expiry is judged by the caller's clock).
SELECT * FROM hora_api_keys
WHERE revoked_at IS NULL
  AND EXISTS (SELECT 1 FROM json_each(hora_api_keys.scopes) WHERE value = 'operator');

-- name: set_webhook_secret
UPDATE hora_tenants SET webhook_secret = :webhook_secret, updated_at = :now WHERE id = :id;

-- name: count_pending_jobs
-- Unfinished jobs of a tenant, counted up to :limit (a quota check needs no more). Walks the
-- partial indexes of waiting and of leased jobs, so the cost follows the backlog, not the
-- history: there is no index on tenant_id, and a scan of every finished job per enqueue would
-- grow without bound. A running job always holds a lease (CHECK in 0001).
SELECT count(*) FROM (
    SELECT 1 FROM hora_jobs INDEXED BY hora_jobs_due
    WHERE state IN ('scheduled', 'retrying') AND tenant_id = :tenant_id
    UNION ALL
    SELECT 1 FROM hora_jobs INDEXED BY hora_jobs_leased
    WHERE lease_owner IS NOT NULL AND state = 'running' AND tenant_id = :tenant_id
    LIMIT :limit);

-- name: count_active_schedules
SELECT count(*) FROM (
    SELECT 1 FROM hora_schedules
    WHERE tenant_id = :tenant_id AND state = 'active'
    LIMIT :limit);

-- name: claim_idempotent
-- A fresh row, or a takeover of an expired record or of one stuck in progress; RETURNING
-- nothing means the key is taken and its record stands (read it with get_idempotent).
INSERT INTO hora_idempotency (tenant_id, key, fingerprint, status, body, created_at)
VALUES (:tenant_id, :key, :fingerprint, NULL, NULL, :now)
ON CONFLICT (tenant_id, key) DO UPDATE
SET fingerprint = excluded.fingerprint, status = NULL, body = NULL,
    created_at = excluded.created_at
WHERE hora_idempotency.created_at < :expired_before
   OR (hora_idempotency.status IS NULL AND hora_idempotency.created_at < :stuck_before)
RETURNING key;

-- name: get_idempotent
SELECT * FROM hora_idempotency WHERE tenant_id = :tenant_id AND key = :key;

-- name: finish_idempotent
-- Only a request in progress records its response: a finished record keeps the first one.
UPDATE hora_idempotency SET status = :status, body = :body
WHERE tenant_id = :tenant_id AND key = :key AND status IS NULL;

-- name: abort_idempotent
DELETE FROM hora_idempotency WHERE tenant_id = :tenant_id AND key = :key AND status IS NULL;

-- name: purge_idempotent
DELETE FROM hora_idempotency WHERE created_at < :before;

-- name: insert_workflow
-- Nothing happens when the (tenant, id) exists: starting with a given id is idempotent.
INSERT INTO hora_workflows (tenant_id, id, name, args, state, result, error, correlation_id,
                            parent_id, wait_kind, wait_name, wait_until, cancel_requested,
                            cancel_reason, compensation, run_owner, run_until, created_at,
                            updated_at, finished_at, version)
VALUES (:tenant_id, :id, :name, :args, :state, :result, :error, :correlation_id, :parent_id,
        :wait_kind, :wait_name, :wait_until, :cancel_requested, :cancel_reason, :compensation,
        :run_owner, :run_until, :created_at, :updated_at, :finished_at, :version)
ON CONFLICT (tenant_id, id) DO NOTHING;

-- name: get_workflow
SELECT * FROM hora_workflows WHERE tenant_id = :tenant_id AND id = :id;

-- name: list_workflows
-- Newest first by (created_at, id); the cursor is the last row's pair.
SELECT * FROM hora_workflows
WHERE tenant_id = :tenant_id
  AND (:cursor_at IS NULL OR (created_at, id) < (:cursor_at, :cursor_id))
  AND (:states IS NULL OR state IN (SELECT value FROM json_each(:states)))
  AND (:name IS NULL OR name = :name)
  AND (:correlation_id IS NULL OR correlation_id = :correlation_id)
  AND (:wait_kind IS NULL OR wait_kind = :wait_kind)
  AND (:parent_id IS NULL OR parent_id = :parent_id)
ORDER BY created_at DESC, id DESC
LIMIT :limit;

-- name: acquire_workflow
-- The run lease goes to :owner unless another owner's is still valid or the workflow is
-- final; a workflow compensating stays so, any other goes (back) to running.
UPDATE hora_workflows
SET run_owner = :owner, run_until = :until,
    state = CASE WHEN state = 'compensating' THEN state ELSE 'running' END,
    updated_at = :now, version = version + 1
WHERE tenant_id = :tenant_id AND id = :id
  AND state NOT IN ('completed', 'failed', 'cancelled')
  AND (run_owner IS NULL OR run_owner = :owner OR run_until <= :now
       OR run_owner = :replaces)
RETURNING *;

-- name: workflow_owned
SELECT 1 FROM hora_workflows
WHERE tenant_id = :tenant_id AND id = :workflow_id AND run_owner = :owner;

-- name: load_history
SELECT * FROM hora_workflow_history
WHERE tenant_id = :tenant_id AND workflow_id = :workflow_id
ORDER BY seq;

-- name: record_history
-- One journal row, inserted or overwritten, only while :owner holds the run lease: no row
-- changed means it does not (the write lock of BEGIN IMMEDIATE keeps it so until commit).
-- (WHERE before ON CONFLICT also keeps SQLite from reading ON as a join's.)
INSERT INTO hora_workflow_history (tenant_id, workflow_id, seq, kind, name, input, output,
                                   error, status, attempts, started_at, finished_at, deadline)
SELECT :tenant_id, :workflow_id, :seq, :kind, :name, :input, :output, :error, :status,
       :attempts, :started_at, :finished_at, :deadline
WHERE EXISTS (SELECT 1 FROM hora_workflows
              WHERE tenant_id = :tenant_id AND id = :workflow_id AND run_owner = :owner)
ON CONFLICT (tenant_id, workflow_id, seq) DO UPDATE
SET kind = excluded.kind, name = excluded.name, input = excluded.input,
    output = excluded.output, error = excluded.error, status = excluded.status,
    attempts = excluded.attempts, started_at = excluded.started_at,
    finished_at = excluded.finished_at, deadline = excluded.deadline;

-- name: take_signal
-- The oldest waiting signal of a name, marked consumed by :seq, only for the lease holder.
UPDATE hora_workflow_signals SET consumed_seq = :seq
WHERE id = (SELECT id FROM hora_workflow_signals INDEXED BY hora_workflow_signals_waiting
            WHERE tenant_id = :tenant_id AND workflow_id = :workflow_id AND name = :name
              AND consumed_seq IS NULL
            ORDER BY ord
            LIMIT 1)
  AND EXISTS (SELECT 1 FROM hora_workflows
              WHERE tenant_id = :tenant_id AND id = :workflow_id AND run_owner = :owner)
RETURNING *;

-- name: finish_run
-- Ends the run of the lease holder: writes what the run decided and clears the lease.
UPDATE hora_workflows
SET state = :state, result = :result, error = :error, wait_kind = :wait_kind,
    wait_name = :wait_name, wait_until = :wait_until, compensation = :compensation,
    finished_at = :finished_at, run_owner = NULL, run_until = NULL, updated_at = :updated_at,
    version = version + 1
WHERE tenant_id = :tenant_id AND id = :id AND run_owner = :owner
RETURNING *;

-- name: insert_signal
-- ord counts up per workflow; BEGIN IMMEDIATE makes the max and the insert one step.
INSERT INTO hora_workflow_signals (id, tenant_id, workflow_id, ord, name, payload, actor,
                                   comment, sent_at, consumed_seq)
VALUES (:id, :tenant_id, :workflow_id,
        (SELECT COALESCE(max(ord), 0) + 1 FROM hora_workflow_signals
         WHERE tenant_id = :tenant_id AND workflow_id = :workflow_id),
        :name, :payload, :actor, :comment, :sent_at, :consumed_seq)
RETURNING *;

-- name: list_signals
SELECT * FROM hora_workflow_signals
WHERE tenant_id = :tenant_id AND workflow_id = :workflow_id
ORDER BY ord;

-- name: request_workflow_cancel
UPDATE hora_workflows
SET cancel_requested = 1, cancel_reason = :reason, updated_at = :now, version = version + 1
WHERE tenant_id = :tenant_id AND id = :id AND state NOT IN ('completed', 'failed', 'cancelled')
RETURNING *;

-- name: insert_approval
-- Nothing happens when the position (tenant, workflow, seq) has its request already: a
-- replay of the wait finds that one (approval_at).
INSERT INTO hora_approvals (id, tenant_id, workflow_id, workflow_name, seq, name, approvers,
                            context, state, deadline, created_at)
VALUES (:id, :tenant_id, :workflow_id, :workflow_name, :seq, :name, :approvers, :context,
        'pending', :deadline, :created_at)
ON CONFLICT (tenant_id, workflow_id, seq) DO NOTHING;

-- name: approval_at
SELECT * FROM hora_approvals
WHERE tenant_id = :tenant_id AND workflow_id = :workflow_id AND seq = :seq;

-- name: get_approval
SELECT * FROM hora_approvals WHERE tenant_id = :tenant_id AND id = :id;

-- name: list_approvals
-- Newest first by (created_at, id); the cursor is the last row's pair.
SELECT * FROM hora_approvals
WHERE tenant_id = :tenant_id
  AND (:cursor_at IS NULL OR (created_at, id) < (:cursor_at, :cursor_id))
  AND (:states IS NULL OR state IN (SELECT value FROM json_each(:states)))
  AND (:workflow_id IS NULL OR workflow_id = :workflow_id)
  AND (:name IS NULL OR name = :name)
ORDER BY created_at DESC, id DESC
LIMIT :limit;

-- name: decide_approval
-- The one move of a decision: only from pending, only before the deadline.
UPDATE hora_approvals
SET state = :state, decided_by = :decided_by, decided_by_key = :decided_by_key,
    comment = :comment, decided_at = :now
WHERE tenant_id = :tenant_id AND id = :id AND state = 'pending'
  AND (deadline IS NULL OR deadline > :now)
RETURNING *;

-- name: close_approval
-- Expired (only once the deadline has passed) or cancelled, only from pending.
UPDATE hora_approvals SET state = :state, decided_at = :now
WHERE tenant_id = :tenant_id AND id = :id AND state = 'pending'
  AND (:state = 'cancelled' OR (deadline IS NOT NULL AND deadline <= :now));

-- name: cancel_workflow_approvals
-- A workflow asked to stop (or ended) leaves nothing to decide.
UPDATE hora_approvals SET state = 'cancelled', decided_at = :now
WHERE tenant_id = :tenant_id AND workflow_id = :workflow_id AND state = 'pending';

-- name: acquire_lock
-- One statement: a new row starts at token 1; an existing one is taken over, token + 1,
-- only if it was released or has expired at :now. RETURNING nothing means another grant
-- (the caller's own included: locks are not re-entrant) still holds it.
INSERT INTO hora_locks (tenant_id, name, owner, token, acquired_at, expires_at)
VALUES (:tenant_id, :name, :owner, 1, :now, :expires_at)
ON CONFLICT (tenant_id, name) DO UPDATE
SET owner = excluded.owner, token = hora_locks.token + 1, acquired_at = excluded.acquired_at,
    expires_at = excluded.expires_at
WHERE hora_locks.expires_at <= :now OR hora_locks.owner IS NULL
RETURNING token;

-- name: renew_lock
-- Only the grant (owner, token) that still holds the lock, unexpired at :now, extends it.
UPDATE hora_locks SET expires_at = :expires_at
WHERE tenant_id = :tenant_id AND name = :name AND owner = :owner AND token = :token
  AND expires_at > :now;

-- name: release_lock
-- Frees the lock, keeping the row (and so the token count); expires_at goes back to the
-- grant's own start, an instant already past.
UPDATE hora_locks SET owner = NULL, expires_at = acquired_at
WHERE tenant_id = :tenant_id AND name = :name AND owner = :owner AND token = :token;

-- name: get_lock
SELECT * FROM hora_locks WHERE tenant_id = :tenant_id AND name = :name;

-- name: unfinished_jobs_of_schedules
-- The jobs a scheduler pass's overlap policies look at, for every schedule it read at once.
SELECT schedule_id, id, state FROM hora_jobs
WHERE schedule_id IN (SELECT value FROM json_each(:schedule_ids))
  AND state IN ('scheduled', 'retrying', 'running')
ORDER BY schedule_id, id;
