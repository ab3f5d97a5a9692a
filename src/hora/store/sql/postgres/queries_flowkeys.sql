-- Debounce and throttle on enqueue (store/postgres/flowkeys.py): one hora_flow_keys row per
-- (tenant, kind, task, key), created if new and locked for the rest of the enqueue's
-- transaction, so racing enqueues of one key take turns.

-- name: flow_key_lock
-- The key's row, locked for the transaction, with the job it names: created empty (no job,
-- an expired window) if the key is new. The no-op DO UPDATE is what takes the row lock
-- (and waits for a racing insert of the same key to commit).
INSERT INTO hora_flow_keys (tenant_id, kind, task, key, job_id, first_at, until)
VALUES (%(tenant_id)s, %(kind)s, %(task)s, %(key)s, '', %(now)s, %(now)s)
ON CONFLICT (tenant_id, kind, task, key) DO UPDATE SET job_id = hora_flow_keys.job_id
RETURNING job_id, first_at, until;

-- name: flow_key_set
UPDATE hora_flow_keys SET job_id = %(job_id)s, first_at = %(first_at)s, until = %(until)s
WHERE tenant_id = %(tenant_id)s AND kind = %(kind)s AND task = %(task)s AND key = %(key)s;

-- name: flow_job_by_idempotency_key
SELECT id, fingerprint FROM hora_jobs
WHERE tenant_id = %(tenant_id)s AND idempotency_key = %(key)s;

-- name: debounce_fold
-- Only into a job still waiting unleased: the UPDATE locks it, so a claim that comes later
-- skips it (SKIP LOCKED) until the commit, and one that came first made it running (no row:
-- the enqueue makes a new job). The later enqueue's payload (and the gates computed from it)
-- replace the job's; a later idempotency key replaces the job's (with its fingerprint), none
-- keeps the old one. state_reason counts the enqueues: the job's earlier folds (its
-- 'debounced:' events), its first enqueue and this one.
UPDATE hora_jobs
SET payload = %(payload)s::jsonb, flow = %(flow)s, concurrency_key = %(concurrency_key)s,
    due_at = %(due_at)s,
    idempotency_key = coalesce(%(idempotency_key)s::text, idempotency_key),
    fingerprint = CASE WHEN %(idempotency_key)s::text IS NULL THEN fingerprint
                       ELSE %(fingerprint)s END,
    state_reason = 'debounced: ' || ((SELECT count(*) FROM hora_job_events
                                      WHERE job_id = %(id)s AND reason LIKE 'debounced:%%')
                                     + 2)::text || %(reason)s::text,
    updated_at = %(now)s
WHERE id = %(id)s AND tenant_id = %(tenant_id)s AND state = 'scheduled'
  AND lease_owner IS NULL;

-- name: debounce_event
-- A fold is no state change (the trigger records none): its event is written here.
INSERT INTO hora_job_events (job_id, at, from_state, to_state, attempt, reason)
VALUES (%(id)s, %(now)s, 'scheduled', 'scheduled', 0, %(reason)s);

-- name: throttle_cancel
UPDATE hora_jobs
SET state = 'cancelled', state_reason = %(reason)s, updated_at = %(now)s, finished_at = %(now)s
WHERE id = %(id)s AND state = 'scheduled';

-- name: flow_keys_prune
-- Rows another enqueue holds are skipped, not waited for.
DELETE FROM hora_flow_keys
WHERE (tenant_id, kind, task, key) IN (
    SELECT tenant_id, kind, task, key FROM hora_flow_keys
    WHERE until < %(before)s ORDER BY until LIMIT %(limit)s
    FOR UPDATE SKIP LOCKED);
