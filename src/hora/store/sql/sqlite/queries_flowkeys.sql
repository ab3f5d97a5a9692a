-- Debounce and throttle on enqueue (store/sqlite/flowkeys.py): one hora_flow_keys row per
-- (tenant, kind, task, key). SQLite has one writer, so the enqueue's BEGIN IMMEDIATE
-- transaction serialises every enqueue of a key; instants are microseconds.

-- name: flow_key_lock
-- The key's row with the job it names: created empty (no job, an expired window) if the
-- key is new.
INSERT INTO hora_flow_keys (tenant_id, kind, task, key, job_id, first_at, until)
VALUES (:tenant_id, :kind, :task, :key, '', :now, :now)
ON CONFLICT (tenant_id, kind, task, key) DO UPDATE SET job_id = hora_flow_keys.job_id
RETURNING job_id, first_at, until;

-- name: flow_key_set
UPDATE hora_flow_keys SET job_id = :job_id, first_at = :first_at, until = :until
WHERE tenant_id = :tenant_id AND kind = :kind AND task = :task AND key = :key;

-- name: flow_job_by_idempotency_key
SELECT id, fingerprint FROM hora_jobs WHERE tenant_id = :tenant_id AND idempotency_key = :key;

-- name: debounce_fold
-- Only into a job still waiting unleased (none: the enqueue makes a new job). The later
-- enqueue's payload (and the gates computed from it) replace the job's; a later idempotency
-- key replaces the job's (with its fingerprint), none keeps the old one. state_reason counts
-- the enqueues: the job's earlier folds (its 'debounced:' events), its first and this one.
UPDATE hora_jobs
SET payload = :payload, flow = :flow, concurrency_key = :concurrency_key, due_at = :due_at,
    idempotency_key = coalesce(:idempotency_key, idempotency_key),
    fingerprint = CASE WHEN :idempotency_key IS NULL THEN fingerprint ELSE :fingerprint END,
    state_reason = 'debounced: ' || ((SELECT count(*) FROM hora_job_events
                                      WHERE job_id = :id AND reason LIKE 'debounced:%')
                                     + 2) || :reason,
    updated_at = :now
WHERE id = :id AND tenant_id = :tenant_id AND state = 'scheduled' AND lease_owner IS NULL;

-- name: debounce_event
-- A fold is no state change (the trigger records none): its event is written here.
INSERT INTO hora_job_events (job_id, at, from_state, to_state, attempt, reason)
VALUES (:id, :now, 'scheduled', 'scheduled', 0, :reason);

-- name: throttle_cancel
UPDATE hora_jobs
SET state = 'cancelled', state_reason = :reason, updated_at = :now, finished_at = :now
WHERE id = :id AND state = 'scheduled';

-- name: flow_keys_prune
DELETE FROM hora_flow_keys
WHERE (tenant_id, kind, task, key) IN (
    SELECT tenant_id, kind, task, key FROM hora_flow_keys
    WHERE until < :before ORDER BY until LIMIT :limit);
