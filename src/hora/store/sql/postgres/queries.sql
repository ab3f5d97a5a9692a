-- Named queries for the PostgreSQL store. Instants are timestamptz; lists (queues, tasks,
-- states, ids) arrive as arrays and are matched with = ANY(...); a NULL tasks list means any.
-- Batches travel as parallel arrays unpacked with unnest, so a batch is one round trip; they
-- are sent in binary (%(x)b), which spares the client quoting every element.
-- Statements that lock several rows one worker may also touch from another thread (heartbeat,
-- finish, release, start) lock them in id order first, so two of them can never deadlock.

-- name: insert_jobs
-- One statement per batch. Rows are inserted in array order: the caller puts keyless jobs
-- first and keyed ones sorted by (tenant_id, idempotency_key), so concurrent batches wait on
-- each other's keys in one order. RETURNING lists only the jobs actually inserted.
INSERT INTO hora_jobs (id, tenant_id, task, payload, fingerprint, queue, priority, state, due_at,
                       max_attempts, retry_policy, timeout, idempotency_key, correlation_id,
                       replay_of, state_reason, created_at, updated_at, schedule_id, flow,
                       concurrency_key)
SELECT n.id, n.tenant_id, n.task, n.payload, n.fingerprint, n.queue, n.priority, 'scheduled',
       n.due_at, n.max_attempts, n.retry_policy, n.timeout, n.idempotency_key,
       n.correlation_id, n.replay_of, n.state_reason, %(now)s, %(now)s, n.schedule_id, n.flow,
       n.concurrency_key
FROM unnest(%(ids)b::text[], %(tenant_ids)b::text[], %(tasks)b::text[], %(payloads)b::jsonb[],
            %(fingerprints)b::text[], %(queues)b::text[], %(priorities)b::integer[],
            %(due_ats)b::timestamptz[], %(max_attempts)b::integer[],
            %(retry_policies)b::jsonb[], %(timeouts)b::double precision[],
            %(idempotency_keys)b::text[], %(correlation_ids)b::text[],
            %(replay_ofs)b::text[], %(state_reasons)b::text[], %(schedule_ids)b::text[],
            %(flows)b::text[], %(concurrency_keys)b::text[])
     WITH ORDINALITY AS n (id, tenant_id, task, payload, fingerprint, queue, priority, due_at,
                           max_attempts, retry_policy, timeout, idempotency_key,
                           correlation_id, replay_of, state_reason, schedule_id, flow,
                           concurrency_key, ord)
ORDER BY n.ord
ON CONFLICT (tenant_id, idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING
RETURNING id;

-- name: jobs_by_idempotency_key
SELECT j.tenant_id, j.idempotency_key, j.id, j.fingerprint
FROM hora_jobs j
JOIN unnest(%(tenant_ids)b::text[], %(keys)b::text[]) AS k (tenant_id, idempotency_key)
  ON j.tenant_id = k.tenant_id AND j.idempotency_key = k.idempotency_key;

-- name: reserve_upcoming
-- Jobs due within the horizon are leased without changing state, so the worker can hold them
-- in a timer and start them on the instant; an expired reservation is claimable again.
WITH upcoming AS (
    SELECT id FROM hora_jobs
    WHERE state IN ('scheduled', 'retrying')
      AND queue = ANY(%(queues)s::text[])
      AND (%(tasks)s::text[] IS NULL OR task = ANY(%(tasks)s::text[]))
      AND due_at > %(now)s AND due_at <= %(horizon)s
      AND (lease_expires_at IS NULL OR lease_expires_at <= %(now)s)
      AND NOT EXISTS (SELECT 1 FROM hora_queues p WHERE p.tenant_id = hora_jobs.tenant_id
                      AND p.name = hora_jobs.queue AND p.paused)
      -- a gated job starts only through the claim, which checks its gates
      AND flow IS NULL
      AND NOT EXISTS (SELECT 1 FROM hora_rate_limits r WHERE r.tenant_id = hora_jobs.tenant_id
                      AND r.name = 'queue:' || hora_jobs.queue)
    ORDER BY due_at, priority, id
    LIMIT %(limit)s
    FOR UPDATE SKIP LOCKED)
UPDATE hora_jobs j
SET lease_owner = %(owner)s, lease_expires_at = %(lease_until)s
FROM upcoming
WHERE j.id = upcoming.id
RETURNING j.id, j.task, j.payload, j.attempt, j.max_attempts, j.retry_policy, j.timeout,
          j.correlation_id, j.tenant_id, j.due_at, j.priority;

-- name: start_reserved
WITH mine AS (
    SELECT id FROM hora_jobs
    WHERE id = ANY(%(ids)s::text[]) AND state IN ('scheduled', 'retrying')
      AND lease_owner = %(owner)s
    ORDER BY id
    FOR UPDATE)
UPDATE hora_jobs j
SET state = 'running', attempt = j.attempt + 1, lease_expires_at = %(lease_until)s,
    started_at = %(now)s, updated_at = %(now)s, state_reason = NULL, blocked_on = NULL,
    cancel_requested = false
FROM mine
WHERE j.id = mine.id AND j.state IN ('scheduled', 'retrying') AND j.lease_owner = %(owner)s
RETURNING j.id;

-- name: finish_jobs
-- Guarded by owner and attempt: a worker whose lease was lost cannot complete the job again.
-- The ended attempts are written only for the jobs actually moved, their start taken from the
-- job row; the first outcome for an id wins, as when outcomes are applied one by one.
-- Returns the applied ids in batch order.
WITH o AS (
    SELECT DISTINCT ON (id) *
    FROM unnest(%(ids)b::text[], %(attempts)b::integer[], %(owners)b::text[],
                %(states)b::text[], %(due_ats)b::timestamptz[], %(results)b::jsonb[],
                %(errors)b::jsonb[], %(reasons)b::text[], %(outcomes)b::text[],
                %(error_types)b::text[], %(error_messages)b::text[], %(tracebacks)b::text[],
                %(logs)b::jsonb[])
         WITH ORDINALITY AS o (id, attempt, owner, state, due_at, result, error, reason,
                               outcome, error_type, error_message, traceback, logs, ord)
    ORDER BY id, ord),
locked AS (
    -- = ANY: an index probe per id even before the planner has statistics
    SELECT id FROM hora_jobs WHERE id = ANY(%(ids)b::text[]) ORDER BY id FOR UPDATE),
done AS (
    UPDATE hora_jobs j
    SET state = o.state, due_at = COALESCE(o.due_at, j.due_at), lease_owner = NULL,
        lease_expires_at = NULL, result = o.result, last_error = COALESCE(o.error, j.last_error),
        state_reason = o.reason, updated_at = %(now)s, cancel_requested = false,
        finished_at = CASE WHEN o.state IN ('succeeded', 'cancelled', 'dead')
                           THEN %(now)s::timestamptz END
    FROM o, locked
    WHERE j.id = o.id AND j.id = locked.id AND j.id = ANY(%(ids)b::text[])
      AND j.state = 'running' AND j.lease_owner = o.owner AND j.attempt = o.attempt
    RETURNING j.id, j.started_at, j.tenant_id, j.concurrency_key),
ended AS (
    INSERT INTO hora_job_attempts (job_id, attempt, worker_id, started_at, ended_at, outcome,
                                   error_type, error_message, traceback, logs)
    SELECT o.id, o.attempt, o.owner, done.started_at, %(now)s, o.outcome, o.error_type,
           o.error_message, o.traceback, o.logs
    FROM done JOIN o ON o.id = done.id)
SELECT o.id, done.tenant_id, done.concurrency_key FROM o JOIN done ON done.id = o.id
ORDER BY o.ord;

-- name: extend_leases
WITH mine AS (
    SELECT id FROM hora_jobs
    WHERE lease_owner = %(owner)s AND state IN ('running', 'scheduled', 'retrying')
    ORDER BY id
    FOR UPDATE)
UPDATE hora_jobs j SET lease_expires_at = %(lease_until)s
FROM mine
WHERE j.id = mine.id AND j.lease_owner = %(owner)s
  AND j.state IN ('running', 'scheduled', 'retrying')
RETURNING j.id, j.state, j.cancel_requested;

-- name: expired_running
-- SKIP LOCKED: a job a worker is finishing right now is left to that worker.
SELECT id, attempt, max_attempts, lease_owner, cancel_requested FROM hora_jobs
WHERE state = 'running' AND lease_owner IS NOT NULL AND lease_expires_at <= %(now)s
ORDER BY lease_expires_at, id
LIMIT %(limit)s
FOR UPDATE SKIP LOCKED;

-- name: rescue_jobs
-- The jobs come from expired_running (locked by this transaction); the decision per job
-- (retrying or dead) is made by the caller, and the lost attempt is recorded under the owner
-- that held it. Returns the rescued ids in the given order.
WITH r AS (
    SELECT *
    FROM unnest(%(ids)b::text[], %(attempts)b::integer[], %(owners)b::text[],
                %(states)b::text[], %(errors)b::jsonb[], %(reasons)b::text[],
                %(error_types)b::text[], %(error_messages)b::text[])
         WITH ORDINALITY AS r (id, attempt, owner, state, error, reason, error_type,
                               error_message, ord)),
done AS (
    UPDATE hora_jobs j
    SET state = r.state, lease_owner = NULL, lease_expires_at = NULL, due_at = %(now)s,
        last_error = r.error, state_reason = r.reason, updated_at = %(now)s,
        cancel_requested = false,
        finished_at = CASE WHEN r.state IN ('dead', 'cancelled') THEN %(now)s::timestamptz END
    FROM r
    WHERE j.id = r.id AND j.id = ANY(%(ids)b::text[]) AND j.state = 'running'
      AND j.attempt = r.attempt
      AND j.lease_expires_at <= %(now)s
    RETURNING j.id, j.started_at),
ended AS (
    INSERT INTO hora_job_attempts (job_id, attempt, worker_id, started_at, ended_at, outcome,
                                   error_type, error_message, traceback)
    SELECT r.id, r.attempt, r.owner, done.started_at, %(now)s, 'lost', r.error_type,
           r.error_message, NULL
    FROM done JOIN r ON r.id = done.id)
SELECT r.id FROM r JOIN done ON done.id = r.id ORDER BY r.ord;

-- name: release_running
-- Like finish_jobs, for one owner's running jobs going back to scheduled; returns the count.
WITH o AS (
    SELECT DISTINCT ON (id) *
    FROM unnest(%(ids)b::text[], %(attempts)b::integer[], %(owners)b::text[],
                %(reasons)b::text[], %(outcomes)b::text[], %(error_types)b::text[],
                %(error_messages)b::text[], %(tracebacks)b::text[])
         WITH ORDINALITY AS o (id, attempt, owner, reason, outcome, error_type, error_message,
                               traceback, ord)
    ORDER BY id, ord),
locked AS (
    -- = ANY: an index probe per id even before the planner has statistics
    SELECT id FROM hora_jobs WHERE id = ANY(%(ids)b::text[]) ORDER BY id FOR UPDATE),
done AS (
    UPDATE hora_jobs j
    SET state = 'scheduled', lease_owner = NULL, lease_expires_at = NULL, due_at = %(now)s,
        state_reason = o.reason, updated_at = %(now)s
    FROM o, locked
    WHERE j.id = o.id AND j.id = locked.id AND j.id = ANY(%(ids)b::text[])
      AND j.state = 'running' AND j.lease_owner = %(owner)s AND j.attempt = o.attempt
    RETURNING j.id, j.started_at),
ended AS (
    INSERT INTO hora_job_attempts (job_id, attempt, worker_id, started_at, ended_at, outcome,
                                   error_type, error_message, traceback)
    SELECT o.id, o.attempt, o.owner, done.started_at, %(now)s, o.outcome, o.error_type,
           o.error_message, o.traceback
    FROM done JOIN o ON o.id = done.id)
SELECT count(*) FROM done;

-- name: release_reserved
WITH mine AS (
    SELECT id FROM hora_jobs
    WHERE lease_owner = %(owner)s AND state IN ('scheduled', 'retrying')
    ORDER BY id
    FOR UPDATE)
UPDATE hora_jobs j SET lease_owner = NULL, lease_expires_at = NULL
FROM mine
WHERE j.id = mine.id AND j.lease_owner = %(owner)s AND j.state IN ('scheduled', 'retrying');

-- name: next_due_at
SELECT min(due_at) FROM hora_jobs
WHERE state IN ('scheduled', 'retrying')
  AND queue = ANY(%(queues)s::text[])
  AND (%(tasks)s::text[] IS NULL OR task = ANY(%(tasks)s::text[]))
  AND (lease_expires_at IS NULL OR lease_expires_at <= %(now)s)
  AND NOT EXISTS (SELECT 1 FROM hora_queues p WHERE p.tenant_id = hora_jobs.tenant_id
                  AND p.name = hora_jobs.queue AND p.paused);

-- name: get_job
SELECT * FROM hora_jobs WHERE id = %(id)s AND tenant_id = %(tenant_id)s;

-- name: lock_jobs
-- Replay and discard lock their jobs in id order up front, so two overlapping batches queue
-- instead of deadlocking.
SELECT id FROM hora_jobs
WHERE id = ANY(%(ids)s::text[]) AND tenant_id = %(tenant_id)s
ORDER BY id
FOR UPDATE;

-- name: get_attempts
SELECT job_id, attempt, worker_id, started_at, ended_at, outcome, error_type, error_message,
       traceback
FROM hora_job_attempts WHERE job_id = %(id)s ORDER BY attempt;

-- name: get_events
SELECT id, job_id, at, from_state, to_state, attempt, reason
FROM hora_job_events WHERE job_id = %(id)s ORDER BY id;

-- name: list_jobs
SELECT * FROM hora_jobs
WHERE tenant_id = %(tenant_id)s
  AND (%(cursor)s::text IS NULL OR id < %(cursor)s::text)
  AND (%(states)s::text[] IS NULL OR state = ANY(%(states)s::text[]))
  AND (%(task)s::text IS NULL OR task = %(task)s::text)
  AND (%(queue)s::text IS NULL OR queue = %(queue)s::text)
  AND (%(correlation_id)s::text IS NULL OR correlation_id = %(correlation_id)s::text)
  AND (%(created_after)s::timestamptz IS NULL OR created_at >= %(created_after)s::timestamptz)
  AND (%(created_before)s::timestamptz IS NULL OR created_at < %(created_before)s::timestamptz)
  AND (%(include_internal)s::boolean OR left(task, 14) <> 'hora.workflow:')
ORDER BY id DESC
LIMIT %(limit)s;

-- name: cancel_waiting
UPDATE hora_jobs
SET state = 'cancelled', lease_owner = NULL, lease_expires_at = NULL, state_reason = %(reason)s,
    updated_at = %(now)s, finished_at = %(now)s
WHERE id = %(id)s AND tenant_id = %(tenant_id)s AND state IN ('scheduled', 'retrying');

-- name: request_cancel
UPDATE hora_jobs SET cancel_requested = true, state_reason = %(reason)s, updated_at = %(now)s
WHERE id = %(id)s AND tenant_id = %(tenant_id)s AND state = 'running';

-- name: mark_replayed
UPDATE hora_jobs
SET state = 'replayed', replayed_as = %(new_id)s, state_reason = %(reason)s, updated_at = %(now)s,
    finished_at = %(now)s
WHERE id = %(id)s AND tenant_id = %(tenant_id)s AND state = 'dead';

-- name: discard_dead
UPDATE hora_jobs
SET state = 'discarded', state_reason = %(reason)s, updated_at = %(now)s, finished_at = %(now)s
WHERE id = %(id)s AND tenant_id = %(tenant_id)s AND state = 'dead';

-- name: count_by_state
-- Internal jobs (hora.workflow:*, the runs and timers of workflows) only when asked for.
SELECT state, count(*) FROM hora_jobs
WHERE tenant_id = %(tenant_id)s
  AND (%(include_internal)s::boolean OR left(task, 14) <> 'hora.workflow:')
GROUP BY state;

-- name: insert_schedule
-- Instants arrive as timestamptz, the JSON columns as text cast to jsonb.
INSERT INTO hora_schedules (id, tenant_id, name, task, payload, trigger, queue, priority,
                            max_attempts, retry_policy, timeout, correlation_id, misfire_policy,
                            misfire_grace, catchup_limit, overlap_policy, state, next_fire_at,
                            cursor, created_at, updated_at)
VALUES (%(id)s, %(tenant_id)s, %(name)s, %(task)s, %(payload)s::jsonb, %(trigger)s::jsonb,
        %(queue)s, %(priority)s, %(max_attempts)s, %(retry_policy)s::jsonb, %(timeout)s,
        %(correlation_id)s, %(misfire_policy)s, %(misfire_grace)s, %(catchup_limit)s,
        %(overlap_policy)s, %(state)s, %(next_fire_at)s, %(cursor)s, %(now)s, %(now)s)
RETURNING *;

-- name: get_schedule
SELECT * FROM hora_schedules WHERE id = %(id)s AND tenant_id = %(tenant_id)s;

-- name: list_schedules
SELECT * FROM hora_schedules
WHERE tenant_id = %(tenant_id)s
  AND (%(cursor)s::text IS NULL OR id < %(cursor)s::text)
  AND (%(state)s::text IS NULL OR state = %(state)s::text)
ORDER BY id DESC
LIMIT %(limit)s;

-- name: update_schedule
-- Replaces the row (the caller recomputed cursor and next_fire_at); RETURNING nothing means
-- there is no such schedule for this tenant.
UPDATE hora_schedules
SET name = %(name)s, task = %(task)s, payload = %(payload)s::jsonb,
    trigger = %(trigger)s::jsonb, queue = %(queue)s, priority = %(priority)s,
    max_attempts = %(max_attempts)s, retry_policy = %(retry_policy)s::jsonb,
    timeout = %(timeout)s, correlation_id = %(correlation_id)s,
    misfire_policy = %(misfire_policy)s, misfire_grace = %(misfire_grace)s,
    catchup_limit = %(catchup_limit)s, overlap_policy = %(overlap_policy)s, state = %(state)s,
    next_fire_at = %(next_fire_at)s, cursor = %(cursor)s, error = %(error)s,
    updated_at = %(now)s, version = version + 1
WHERE id = %(id)s AND tenant_id = %(tenant_id)s AND version = %(version)s
RETURNING *;

-- name: delete_schedule
DELETE FROM hora_schedules WHERE id = %(id)s AND tenant_id = %(tenant_id)s;

-- name: delete_ticks
DELETE FROM hora_schedule_ticks WHERE schedule_id = %(id)s;

-- name: get_schedule_by_name
SELECT * FROM hora_schedules WHERE tenant_id = %(tenant_id)s AND name = %(name)s;

-- name: delete_declared_mark
DELETE FROM hora_declared_schedules WHERE schedule_id = %(id)s;

-- name: mark_declared
INSERT INTO hora_declared_schedules (schedule_id, tenant_id, declared_at)
VALUES (%(schedule_id)s, %(tenant_id)s, %(now)s)
ON CONFLICT (schedule_id) DO NOTHING;

-- name: declared_schedules
-- The tenant's schedules marked as declared in code (the mark of a deleted one is gone too).
SELECT s.* FROM hora_declared_schedules d
JOIN hora_schedules s ON s.id = d.schedule_id AND s.tenant_id = d.tenant_id
WHERE d.tenant_id = %(tenant_id)s
ORDER BY s.id;

-- name: due_schedules
-- SKIP LOCKED: a schedule another scheduler is processing is left to it, so two schedulers
-- never plan the same schedule at once (and a row it has advanced meanwhile is re-checked
-- against next_fire_at before it is locked).
SELECT * FROM hora_schedules
WHERE state = 'active' AND next_fire_at IS NOT NULL AND next_fire_at <= %(now)s
ORDER BY next_fire_at
LIMIT %(limit)s
FOR UPDATE SKIP LOCKED;

-- name: unfinished_jobs_of_schedule
SELECT id, state FROM hora_jobs
WHERE schedule_id = %(schedule_id)s AND state IN ('scheduled', 'retrying', 'running')
ORDER BY id;

-- name: lock_job_ids
-- The jobs a scheduler pass cancels, locked in id order up front like every batch that locks
-- several jobs, so it cannot deadlock with a worker's finish or heartbeat.
SELECT id FROM hora_jobs WHERE id = ANY(%(ids)s::text[]) ORDER BY id FOR UPDATE;

-- name: advance_schedule
UPDATE hora_schedules
SET cursor = %(cursor)s, next_fire_at = %(next_fire_at)s, updated_at = %(now)s,
    error = %(error)s, version = version + 1
WHERE id = %(id)s;

-- name: insert_ticks
-- A batch of one schedule's ticks; an occurrence already recorded keeps its first record.
INSERT INTO hora_schedule_ticks (schedule_id, nominal, fire_at, outcome, reason, job_id,
                                 recorded_at)
SELECT %(schedule_id)s, t.nominal, t.fire_at, t.outcome, t.reason, t.job_id, %(now)s
FROM unnest(%(nominals)b::timestamptz[], %(fire_ats)b::timestamptz[], %(outcomes)b::text[],
            %(reasons)b::text[], %(job_ids)b::text[])
     WITH ORDINALITY AS t (nominal, fire_at, outcome, reason, job_id, ord)
ORDER BY t.ord
ON CONFLICT (schedule_id, nominal) DO NOTHING;

-- name: list_ticks
SELECT schedule_id, nominal, fire_at, outcome, reason, job_id, recorded_at
FROM hora_schedule_ticks
WHERE schedule_id = %(schedule_id)s
  AND (%(cursor)s::timestamptz IS NULL OR nominal < %(cursor)s::timestamptz)
  AND (%(outcome)s::text IS NULL OR outcome = %(outcome)s::text)
ORDER BY nominal DESC
LIMIT %(limit)s;

-- name: next_schedule_fire
SELECT min(next_fire_at) FROM hora_schedules
WHERE state = 'active' AND next_fire_at IS NOT NULL;

-- name: insert_tenant
-- RETURNING nothing means a tenant with that id exists.
INSERT INTO hora_tenants (id, name, webhook_secret, max_pending_jobs, max_active_schedules,
                          rate_limit, created_at, updated_at)
VALUES (%(id)s, %(name)s, %(webhook_secret)s, %(max_pending_jobs)s, %(max_active_schedules)s,
        %(rate_limit)s, %(created_at)s, %(updated_at)s)
ON CONFLICT (id) DO NOTHING
RETURNING *;

-- name: get_tenant
SELECT * FROM hora_tenants WHERE id = %(id)s;

-- name: list_tenants
SELECT * FROM hora_tenants
WHERE (%(cursor)s::text IS NULL OR id > %(cursor)s::text)
ORDER BY id
LIMIT %(limit)s;

-- name: update_tenant
UPDATE hora_tenants
SET name = %(name)s, max_pending_jobs = %(max_pending_jobs)s,
    max_active_schedules = %(max_active_schedules)s, rate_limit = %(rate_limit)s,
    updated_at = %(updated_at)s
WHERE id = %(id)s
RETURNING *;

-- name: insert_api_key
-- RETURNING nothing means the id or the hash is taken.
INSERT INTO hora_api_keys (id, tenant_id, name, prefix, key_hash, scopes, created_at,
                           revoked_at, expires_at)
VALUES (%(id)s, %(tenant_id)s, %(name)s, %(prefix)s, %(key_hash)s, %(scopes)s::text[],
        %(created_at)s, %(revoked_at)s, %(expires_at)s)
ON CONFLICT DO NOTHING
RETURNING *;

-- name: api_key_by_hash
SELECT * FROM hora_api_keys WHERE key_hash = %(key_hash)s;

-- name: list_api_keys
-- Newest first (ids are UUIDv7 strings, which sort by creation time).
SELECT * FROM hora_api_keys
WHERE (%(tenant_id)s::text IS NULL OR tenant_id = %(tenant_id)s::text)
  AND (%(cursor)s::text IS NULL OR id < %(cursor)s::text)
ORDER BY id DESC
LIMIT %(limit)s;

-- name: revoke_api_key
-- Revoking twice keeps the first instant.
UPDATE hora_api_keys SET revoked_at = COALESCE(revoked_at, %(now)s) WHERE id = %(id)s
RETURNING *;

-- name: count_api_keys
SELECT count(*) FROM hora_api_keys;

-- name: get_api_key
SELECT * FROM hora_api_keys WHERE id = %(id)s;

-- name: unrevoked_operator_keys
-- Few rows: the keys that manage every tenant (expiry is judged by the caller's clock).
-- Locked, so two revocations racing for the last two operator keys take turns: the second
-- sees the first's revocation (READ COMMITTED re-reads a locked row) and is refused.
SELECT * FROM hora_api_keys
WHERE revoked_at IS NULL AND 'operator' = ANY (scopes)
ORDER BY id
FOR UPDATE;

-- name: set_webhook_secret
UPDATE hora_tenants SET webhook_secret = %(webhook_secret)s, updated_at = %(now)s
WHERE id = %(id)s
RETURNING *;

-- name: count_pending_jobs
-- Unfinished jobs of a tenant, counted up to the limit (a quota check needs no more). Two
-- branches whose WHERE clauses match the partial indexes of waiting and of leased jobs, so the
-- cost follows the backlog, not the history: there is no index on tenant_id, and a scan of
-- every finished job per enqueue would grow without bound. A running job always holds a lease
-- (CHECK in 0001).
SELECT count(*) FROM (
    SELECT 1 FROM hora_jobs
    WHERE state IN ('scheduled', 'retrying') AND tenant_id = %(tenant_id)s
    UNION ALL
    SELECT 1 FROM hora_jobs
    WHERE lease_owner IS NOT NULL AND state = 'running' AND tenant_id = %(tenant_id)s
    LIMIT %(limit)s) AS pending;

-- name: count_active_schedules
SELECT count(*) FROM (
    SELECT 1 FROM hora_schedules
    WHERE tenant_id = %(tenant_id)s AND state = 'active'
    LIMIT %(limit)s) AS active;

-- name: claim_idempotent
-- One statement, so two requests with one key cannot both claim it: the second waits on the
-- first's row, then finds it taken. A fresh row, or a takeover of an expired record or of one
-- stuck in progress; RETURNING nothing means the key is taken, and the conflicting row is
-- locked (DO UPDATE locks it even when WHERE refuses), so it is there to be read.
INSERT INTO hora_idempotency AS i (tenant_id, key, fingerprint, status, body, created_at)
VALUES (%(tenant_id)s, %(key)s, %(fingerprint)s, NULL, NULL, %(now)s)
ON CONFLICT (tenant_id, key) DO UPDATE
SET fingerprint = excluded.fingerprint, status = NULL, body = NULL,
    created_at = excluded.created_at
WHERE i.created_at < %(expired_before)s
   OR (i.status IS NULL AND i.created_at < %(stuck_before)s)
RETURNING i.key;

-- name: get_idempotent
SELECT * FROM hora_idempotency WHERE tenant_id = %(tenant_id)s AND key = %(key)s;

-- name: finish_idempotent
-- Only a request in progress records its response: a finished record keeps the first one.
UPDATE hora_idempotency SET status = %(status)s, body = %(body)s
WHERE tenant_id = %(tenant_id)s AND key = %(key)s AND status IS NULL;

-- name: abort_idempotent
DELETE FROM hora_idempotency
WHERE tenant_id = %(tenant_id)s AND key = %(key)s AND status IS NULL;

-- name: purge_idempotent
DELETE FROM hora_idempotency WHERE created_at < %(before)s;

-- name: insert_workflow
-- RETURNING nothing means the (tenant, id) exists: starting with a given id is idempotent.
-- (A concurrent start of the same id waits here for the other to commit, then finds it.)
INSERT INTO hora_workflows (tenant_id, id, name, args, state, result, error, correlation_id,
                            parent_id, wait_kind, wait_name, wait_until, cancel_requested,
                            cancel_reason, compensation, run_owner, run_until, created_at,
                            updated_at, finished_at, version)
VALUES (%(tenant_id)s, %(id)s, %(name)s, %(args)s::jsonb, %(state)s, %(result)s::jsonb,
        %(error)s::jsonb, %(correlation_id)s, %(parent_id)s, %(wait_kind)s, %(wait_name)s,
        %(wait_until)s, %(cancel_requested)s, %(cancel_reason)s, %(compensation)s,
        %(run_owner)s, %(run_until)s, %(created_at)s, %(updated_at)s, %(finished_at)s,
        %(version)s)
ON CONFLICT (tenant_id, id) DO NOTHING
RETURNING *;

-- name: get_workflow
SELECT * FROM hora_workflows WHERE tenant_id = %(tenant_id)s AND id = %(id)s;

-- name: list_workflows
-- Newest first by (created_at, id); the cursor is the last row's pair.
SELECT * FROM hora_workflows
WHERE tenant_id = %(tenant_id)s
  AND (%(cursor_at)s::timestamptz IS NULL
       OR (created_at, id) < (%(cursor_at)s::timestamptz, %(cursor_id)s::text))
  AND (%(states)s::text[] IS NULL OR state = ANY(%(states)s::text[]))
  AND (%(name)s::text IS NULL OR name = %(name)s::text)
  AND (%(correlation_id)s::text IS NULL OR correlation_id = %(correlation_id)s::text)
  AND (%(wait_kind)s::text IS NULL OR wait_kind = %(wait_kind)s::text)
  AND (%(parent_id)s::text IS NULL OR parent_id = %(parent_id)s::text)
ORDER BY created_at DESC, id DESC
LIMIT %(limit)s;

-- name: acquire_workflow
-- One conditional UPDATE: of concurrent acquirers the first locks the row, the others then
-- re-check the WHERE against its new version and find the lease taken.
UPDATE hora_workflows
SET run_owner = %(owner)s, run_until = %(until)s,
    state = CASE WHEN state = 'compensating' THEN state ELSE 'running' END,
    updated_at = %(now)s, version = version + 1
WHERE tenant_id = %(tenant_id)s AND id = %(id)s
  AND state NOT IN ('completed', 'failed', 'cancelled')
  AND (run_owner IS NULL OR run_owner = %(owner)s OR run_until <= %(now)s
       OR run_owner = %(replaces)s)
RETURNING *;

-- name: workflow_owned
SELECT 1 FROM hora_workflows
WHERE tenant_id = %(tenant_id)s AND id = %(workflow_id)s AND run_owner = %(owner)s;

-- name: workflow_state_for_signal
-- FOR SHARE: a run ending concurrently (finish_run's UPDATE) is waited for, so a signal is
-- never stored after its workflow became final.
SELECT state FROM hora_workflows
WHERE tenant_id = %(tenant_id)s AND id = %(workflow_id)s
FOR SHARE;

-- name: load_history
SELECT * FROM hora_workflow_history
WHERE tenant_id = %(tenant_id)s AND workflow_id = %(workflow_id)s
ORDER BY seq;

-- name: record_history
-- One workflow's journal rows, inserted or overwritten in one statement, only while :owner
-- holds the run lease: no row written means it does not. The lease check locks the workflow
-- row (FOR SHARE) until commit, so a new owner's acquire waits for this write instead of
-- replaying a journal that misses it. The check is uncorrelated: it is made once, for all
-- rows, so the statement writes all of them or none.
INSERT INTO hora_workflow_history AS h (tenant_id, workflow_id, seq, kind, name, input,
                                        output, error, status, attempts, started_at,
                                        finished_at, deadline)
SELECT %(tenant_id)s::text, %(workflow_id)s::text, n.seq, n.kind, n.name, n.input, n.output,
       n.error, n.status, n.attempts, n.started_at, n.finished_at, n.deadline
FROM unnest(%(seqs)b::integer[], %(kinds)b::text[], %(names)b::text[], %(inputs)b::jsonb[],
            %(outputs)b::jsonb[], %(errors)b::jsonb[], %(statuses)b::text[],
            %(attempts)b::integer[], %(started_ats)b::timestamptz[],
            %(finished_ats)b::timestamptz[], %(deadlines)b::timestamptz[])
     AS n (seq, kind, name, input, output, error, status, attempts, started_at, finished_at,
           deadline)
WHERE EXISTS (SELECT 1 FROM hora_workflows
              WHERE tenant_id = %(tenant_id)s AND id = %(workflow_id)s
                AND run_owner = %(owner)s
              FOR SHARE)
ON CONFLICT (tenant_id, workflow_id, seq) DO UPDATE
SET kind = excluded.kind, name = excluded.name, input = excluded.input,
    output = excluded.output, error = excluded.error, status = excluded.status,
    attempts = excluded.attempts, started_at = excluded.started_at,
    finished_at = excluded.finished_at, deadline = excluded.deadline;

-- name: take_signal
-- The oldest waiting signal of a name, marked consumed by :seq, only for the lease holder
-- (whose row lock, as in record_history, holds the lease still until commit).
UPDATE hora_workflow_signals s SET consumed_seq = %(seq)s
WHERE s.id = (SELECT id FROM hora_workflow_signals
              WHERE tenant_id = %(tenant_id)s AND workflow_id = %(workflow_id)s
                AND name = %(name)s AND consumed_seq IS NULL
              ORDER BY ord
              LIMIT 1)
  AND s.consumed_seq IS NULL
  AND EXISTS (SELECT 1 FROM hora_workflows
              WHERE tenant_id = %(tenant_id)s AND id = %(workflow_id)s
                AND run_owner = %(owner)s
              FOR SHARE)
RETURNING s.*;

-- name: finish_run
-- Ends the run of the lease holder: writes what the run decided and clears the lease.
UPDATE hora_workflows
SET state = %(state)s, result = %(result)s::jsonb, error = %(error)s::jsonb,
    wait_kind = %(wait_kind)s, wait_name = %(wait_name)s, wait_until = %(wait_until)s,
    compensation = %(compensation)s, finished_at = %(finished_at)s, run_owner = NULL,
    run_until = NULL, updated_at = %(updated_at)s, version = version + 1
WHERE tenant_id = %(tenant_id)s AND id = %(id)s AND run_owner = %(owner)s
RETURNING *;

-- name: insert_signal
-- ord comes from the column's sequence.
INSERT INTO hora_workflow_signals (id, tenant_id, workflow_id, name, payload, actor, comment,
                                   sent_at, consumed_seq)
VALUES (%(id)s, %(tenant_id)s, %(workflow_id)s, %(name)s, %(payload)s::jsonb, %(actor)s,
        %(comment)s, %(sent_at)s, %(consumed_seq)s)
RETURNING *;

-- name: list_signals
SELECT * FROM hora_workflow_signals
WHERE tenant_id = %(tenant_id)s AND workflow_id = %(workflow_id)s
ORDER BY ord;

-- name: request_workflow_cancel
UPDATE hora_workflows
SET cancel_requested = true, cancel_reason = %(reason)s, updated_at = %(now)s,
    version = version + 1
WHERE tenant_id = %(tenant_id)s AND id = %(id)s
  AND state NOT IN ('completed', 'failed', 'cancelled')
RETURNING *;

-- name: insert_approval
-- Nothing happens when the position (tenant, workflow, seq) has its request already: a
-- replay of the wait finds that one (approval_at).
INSERT INTO hora_approvals (id, tenant_id, workflow_id, workflow_name, seq, name, approvers,
                            context, state, deadline, created_at)
VALUES (%(id)s, %(tenant_id)s, %(workflow_id)s, %(workflow_name)s, %(seq)s, %(name)s,
        %(approvers)s::jsonb, %(context)s::jsonb, 'pending', %(deadline)s, %(created_at)s)
ON CONFLICT (tenant_id, workflow_id, seq) DO NOTHING;

-- name: approval_at
SELECT * FROM hora_approvals
WHERE tenant_id = %(tenant_id)s AND workflow_id = %(workflow_id)s AND seq = %(seq)s;

-- name: get_approval
SELECT * FROM hora_approvals WHERE tenant_id = %(tenant_id)s AND id = %(id)s;

-- name: list_approvals
-- Newest first by (created_at, id); the cursor is the last row's pair.
SELECT * FROM hora_approvals
WHERE tenant_id = %(tenant_id)s
  AND (%(cursor_at)s::timestamptz IS NULL
       OR (created_at, id) < (%(cursor_at)s::timestamptz, %(cursor_id)s::text))
  AND (%(states)s::text[] IS NULL OR state = ANY(%(states)s::text[]))
  AND (%(workflow_id)s::text IS NULL OR workflow_id = %(workflow_id)s::text)
  AND (%(name)s::text IS NULL OR name = %(name)s::text)
ORDER BY created_at DESC, id DESC
LIMIT %(limit)s;

-- name: decide_approval
-- The one move of a decision: only from pending, only before the deadline. A concurrent
-- decision waits for the row lock, then finds the row no longer pending.
UPDATE hora_approvals
SET state = %(state)s, decided_by = %(decided_by)s, decided_by_key = %(decided_by_key)s,
    comment = %(comment)s, decided_at = %(now)s
WHERE tenant_id = %(tenant_id)s AND id = %(id)s AND state = 'pending'
  AND (deadline IS NULL OR deadline > %(now)s)
RETURNING *;

-- name: close_approval
-- Expired (only once the deadline has passed) or cancelled, only from pending.
UPDATE hora_approvals SET state = %(state)s, decided_at = %(now)s
WHERE tenant_id = %(tenant_id)s AND id = %(id)s AND state = 'pending'
  AND (%(state)s = 'cancelled' OR (deadline IS NOT NULL AND deadline <= %(now)s));

-- name: cancel_workflow_approvals
-- A workflow asked to stop (or ended) leaves nothing to decide.
UPDATE hora_approvals SET state = 'cancelled', decided_at = %(now)s
WHERE tenant_id = %(tenant_id)s AND workflow_id = %(workflow_id)s AND state = 'pending';

-- name: acquire_lock
-- One statement: a new row starts at token 1; an existing one is taken over, token + 1,
-- only if it was released or has expired at :now. Of concurrent acquirers the first locks
-- the row and the others re-check the WHERE against its new version, so one wins.
-- RETURNING nothing means another grant (the caller's own included: locks are not
-- re-entrant) still holds it.
INSERT INTO hora_locks AS l (tenant_id, name, owner, token, acquired_at, expires_at)
VALUES (%(tenant_id)s, %(name)s, %(owner)s, 1, %(now)s, %(expires_at)s)
ON CONFLICT (tenant_id, name) DO UPDATE
SET owner = excluded.owner, token = l.token + 1, acquired_at = excluded.acquired_at,
    expires_at = excluded.expires_at
WHERE l.expires_at <= %(now)s OR l.owner IS NULL
RETURNING token;

-- name: renew_lock
-- Only the grant (owner, token) that still holds the lock, unexpired at :now, extends it.
UPDATE hora_locks SET expires_at = %(expires_at)s
WHERE tenant_id = %(tenant_id)s AND name = %(name)s AND owner = %(owner)s
  AND token = %(token)s AND expires_at > %(now)s;

-- name: release_lock
-- Frees the lock, keeping the row (and so the token count); expires_at goes back to the
-- grant's own start, an instant already past.
UPDATE hora_locks SET owner = NULL, expires_at = acquired_at
WHERE tenant_id = %(tenant_id)s AND name = %(name)s AND owner = %(owner)s
  AND token = %(token)s;

-- name: get_lock
SELECT * FROM hora_locks WHERE tenant_id = %(tenant_id)s AND name = %(name)s;

-- name: unfinished_jobs_of_schedules
-- The jobs a scheduler pass's overlap policies look at, for every schedule it locked at once.
SELECT schedule_id, id, state FROM hora_jobs
WHERE schedule_id = ANY(%(schedule_ids)s::text[]) AND state IN ('scheduled', 'retrying', 'running')
ORDER BY schedule_id, id;

-- name: record_ticks
-- A scheduler pass's ticks, every schedule's at once; an occurrence already recorded keeps its
-- first record.
INSERT INTO hora_schedule_ticks (schedule_id, nominal, fire_at, outcome, reason, job_id,
                                 recorded_at)
SELECT t.schedule_id, t.nominal, t.fire_at, t.outcome, t.reason, t.job_id, %(now)s
FROM unnest(%(schedule_ids)b::text[], %(nominals)b::timestamptz[], %(fire_ats)b::timestamptz[],
            %(outcomes)b::text[], %(reasons)b::text[], %(job_ids)b::text[])
     WITH ORDINALITY AS t (schedule_id, nominal, fire_at, outcome, reason, job_id, ord)
ORDER BY t.ord
ON CONFLICT (schedule_id, nominal) DO NOTHING;

-- name: advance_schedules
-- Every schedule of a pass moved on in one statement (the rows are locked by due_schedules).
UPDATE hora_schedules AS s
SET cursor = a.cursor, next_fire_at = a.next_fire_at, updated_at = %(now)s, error = a.error,
    version = s.version + 1
FROM unnest(%(ids)b::text[], %(cursors)b::timestamptz[], %(next_fire_ats)b::timestamptz[],
            %(errors)b::text[]) AS a (id, cursor, next_fire_at, error)
WHERE s.id = a.id;
