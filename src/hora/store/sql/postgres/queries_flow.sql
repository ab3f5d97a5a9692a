-- Flow control in the claim: rate limits and concurrency limits (hora.store.gating,
-- docs/flow.md). Keys of several parts arrive as parallel arrays.

-- name: claim_flow
-- The claim (claim_due in queries.sql before flow control) in one statement: the due jobs,
-- one index range per queue, locked with SKIP LOCKED; those without gates (no flow, no
-- 'queue:<name>' limit on their queue) start at once: the fast path, one round trip as
-- before. The gated candidates come back unstarted (started = false, locked until commit)
-- for hora.store.gating to decide in the same transaction.
WITH fresh AS (
    SELECT c.*
    FROM unnest(%(queues)s::text[]) AS q (name)
    CROSS JOIN LATERAL (
        SELECT id, priority, due_at, flow, tenant_id, queue, blocked_on,
               EXISTS (SELECT 1 FROM hora_rate_limits r WHERE r.tenant_id = hora_jobs.tenant_id
                       AND r.name = 'queue:' || hora_jobs.queue) AS queue_limited
        FROM hora_jobs
        WHERE queue = q.name
          AND state IN ('scheduled', 'retrying')
          AND blocked_on IS NULL
          AND (%(tasks)s::text[] IS NULL OR task = ANY(%(tasks)s::text[]))
          AND due_at <= %(now)s
          AND (lease_expires_at IS NULL OR lease_expires_at <= %(now)s)
          AND NOT EXISTS (SELECT 1 FROM hora_queues p WHERE p.tenant_id = hora_jobs.tenant_id
                          AND p.name = hora_jobs.queue AND p.paused)
        ORDER BY priority, due_at, id
        LIMIT %(limit)s
        FOR UPDATE SKIP LOCKED) AS c),
-- Jobs a gate passed over before (back on their slot, or woken when their concurrency key
-- freed), from their own small index: within a priority they come first. Read up to
-- %(back_until)s (the claim's gate_ahead) before they are due, to start on their instant
-- if their gates admit them by then.
back AS (
    SELECT c.*
    FROM unnest(%(queues)s::text[]) AS q (name)
    CROSS JOIN LATERAL (
        SELECT id, priority, due_at, flow, tenant_id, queue, blocked_on,
               EXISTS (SELECT 1 FROM hora_rate_limits r WHERE r.tenant_id = hora_jobs.tenant_id
                       AND r.name = 'queue:' || hora_jobs.queue) AS queue_limited
        FROM hora_jobs
        WHERE queue = q.name
          AND state IN ('scheduled', 'retrying')
          AND blocked_on IS NOT NULL
          AND (%(tasks)s::text[] IS NULL OR task = ANY(%(tasks)s::text[]))
          AND due_at <= %(back_until)s
          AND (lease_expires_at IS NULL OR lease_expires_at <= %(now)s)
          AND NOT EXISTS (SELECT 1 FROM hora_queues p WHERE p.tenant_id = hora_jobs.tenant_id
                          AND p.name = hora_jobs.queue AND p.paused)
        ORDER BY priority, due_at, id
        LIMIT %(limit)s
        FOR UPDATE SKIP LOCKED) AS c),
due AS (
    SELECT * FROM (SELECT * FROM back UNION ALL SELECT * FROM fresh) AS candidates
    ORDER BY priority, blocked_on IS NULL, due_at, id
    LIMIT %(limit)s),
started AS (
    UPDATE hora_jobs j
    SET state = 'running', attempt = j.attempt + 1, lease_owner = %(owner)s,
        lease_expires_at = %(lease_until)s, started_at = %(now)s, updated_at = %(now)s,
        state_reason = NULL, blocked_on = NULL, cancel_requested = false
    FROM due
    WHERE j.id = due.id AND due.flow IS NULL AND NOT due.queue_limited
      AND due.due_at <= %(now)s
    RETURNING j.id, j.task, j.payload, j.attempt, j.max_attempts, j.retry_policy, j.timeout,
              j.correlation_id, j.tenant_id, j.due_at, j.priority)
SELECT true AS started, s.*, NULL::text AS queue, NULL::text AS flow, false AS queue_limited,
       NULL::text AS blocked_on
FROM started s
UNION ALL
SELECT false, d.id, NULL::text, NULL::jsonb, NULL::integer, NULL::integer, NULL::jsonb,
       NULL::double precision, NULL::text, d.tenant_id, d.due_at, d.priority, d.queue, d.flow,
       d.queue_limited, d.blocked_on
FROM due d WHERE d.flow IS NOT NULL OR d.queue_limited;

-- name: lock_concurrency_keys
-- Serializes claims (and the wake-up after a finish) per concurrency key; the ids arrive
-- sorted, so two transactions never wait on each other's keys in a cycle.
SELECT pg_advisory_xact_lock(k) FROM unnest(%(keys)s::bigint[]) AS t (k);

-- name: gate_state
-- In one round trip: the buckets the claim needs, locked in key order (every claimer locks
-- in one order: no deadlock), and the operators' overrides of its limits (hora_rate_limits).
WITH locked AS (
    SELECT r.tenant_id, r.name, r.key, r.tat, r.slot
    FROM hora_rate_buckets r
    JOIN unnest(%(tenants)s::text[], %(names)s::text[], %(keys)s::text[]) AS b (t, n, k)
      ON r.tenant_id = b.t AND r.name = b.n AND r.key = b.k
    ORDER BY r.tenant_id, r.name, r.key
    FOR UPDATE OF r)
SELECT true AS bucket, tenant_id, name, key, tat, slot, NULL::integer AS count,
       NULL::double precision AS period, NULL::integer AS burst
FROM locked
UNION ALL
SELECT false, l.tenant_id, l.name, '', NULL, NULL, l.count, l.period, l.burst
FROM hora_rate_limits l
JOIN unnest(%(l_tenants)s::text[], %(l_names)s::text[]) AS o (t, n)
  ON l.tenant_id = o.t AND l.name = o.n;

-- name: lock_buckets
-- Buckets gate_state did not find, once insert_buckets made them (in key order too).
SELECT r.tenant_id, r.name, r.key, r.tat, r.slot
FROM hora_rate_buckets r
JOIN unnest(%(tenants)s::text[], %(names)s::text[], %(keys)s::text[]) AS b (t, n, k)
  ON r.tenant_id = b.t AND r.name = b.n AND r.key = b.k
ORDER BY r.tenant_id, r.name, r.key
FOR UPDATE OF r;

-- name: insert_buckets
-- A bucket never seen is full: tat 0 (long past).
INSERT INTO hora_rate_buckets (tenant_id, name, key, tat)
SELECT t, n, k, 0 FROM unnest(%(tenants)s::text[], %(names)s::text[], %(keys)s::text[])
    AS b (t, n, k)
ORDER BY t, n, k
ON CONFLICT (tenant_id, name, key) DO NOTHING;

-- name: running_counts
SELECT j.tenant_id, j.concurrency_key, count(*)
FROM hora_jobs j
JOIN unnest(%(tenants)s::text[], %(keys)s::text[]) AS c (t, k)
  ON j.tenant_id = c.t AND j.concurrency_key = c.k
WHERE j.state = 'running'
GROUP BY j.tenant_id, j.concurrency_key;

-- name: apply_gates
-- What hora.store.gating decided, in one statement: the buckets written back, the jobs passed
-- over due again at their slot (rate) or parked (concurrency) with why, the admitted ones
-- started (all locked by this claim already).
WITH saved AS (
    UPDATE hora_rate_buckets r SET tat = b.tat, slot = b.slot
    FROM unnest(%(b_tenants)s::text[], %(b_names)s::text[], %(b_keys)s::text[],
                %(b_tats)s::bigint[], %(b_slots)s::bigint[]) AS b (t, n, k, tat, slot)
    WHERE r.tenant_id = b.t AND r.name = b.n AND r.key = b.k
    RETURNING 1),
blocked AS (
    UPDATE hora_jobs j
    SET due_at = b.due_at, state_reason = b.reason, blocked_on = b.blocked_on,
        lease_owner = NULL, lease_expires_at = NULL, updated_at = %(now)s
    FROM unnest(%(blocked)s::text[], %(due_ats)s::timestamptz[], %(reasons)s::text[],
                %(blocked_ons)s::text[]) AS b (id, due_at, reason, blocked_on)
    WHERE j.id = b.id AND j.state IN ('scheduled', 'retrying')
    RETURNING 1)
-- An admitted job starts at its instant in %(ats)s: now, or a little later when a gate
-- admits it ahead (due then: the worker holds it until then).
UPDATE hora_jobs j
SET state = 'running', attempt = j.attempt + 1, lease_owner = %(owner)s,
    lease_expires_at = %(lease_until)s, started_at = s.at, updated_at = %(now)s,
    due_at = greatest(j.due_at, s.at),
    state_reason = NULL, blocked_on = NULL, cancel_requested = false
FROM unnest(%(ids)s::text[], %(ats)s::timestamptz[]) AS s (id, at)
WHERE j.id = s.id AND j.state IN ('scheduled', 'retrying')
RETURNING j.id, j.task, j.payload, j.attempt, j.max_attempts, j.retry_policy, j.timeout,
          j.correlation_id, j.tenant_id, j.due_at, j.priority;

-- name: cancel_gated
UPDATE hora_jobs
SET state = 'cancelled', lease_owner = NULL, lease_expires_at = NULL, state_reason = %(reason)s,
    blocked_on = NULL, updated_at = %(now)s, finished_at = %(now)s
WHERE id = %(id)s AND state IN ('scheduled', 'retrying');

-- name: supersede_running
-- SKIP LOCKED: a running job locked now is being finished by its worker (which waits for
-- this claim's key lock): it leaves on its own.
WITH r AS (
    SELECT id FROM hora_jobs
    WHERE tenant_id = %(tenant_id)s AND concurrency_key = %(key)s AND state = 'running'
      AND id <> %(id)s
    ORDER BY id
    FOR UPDATE SKIP LOCKED)
UPDATE hora_jobs j SET cancel_requested = true, state_reason = %(reason)s, updated_at = %(now)s
FROM r WHERE j.id = r.id;

-- name: supersede_waiting
WITH w AS (
    SELECT id FROM hora_jobs
    WHERE tenant_id = %(tenant_id)s AND concurrency_key = %(key)s
      AND state IN ('scheduled', 'retrying') AND id < %(id)s
    ORDER BY id
    FOR UPDATE SKIP LOCKED)
UPDATE hora_jobs j
SET state = 'cancelled', lease_owner = NULL, lease_expires_at = NULL, state_reason = %(reason)s,
    blocked_on = NULL, updated_at = %(now)s, finished_at = %(now)s
FROM w WHERE j.id = w.id;

-- name: concurrency_keys_of
SELECT tenant_id, concurrency_key FROM hora_jobs
WHERE id = ANY(%(ids)s::text[]) AND concurrency_key IS NOT NULL;

-- name: wake_parked
-- A job of the key left running: the next parked ones (FIFO: lowest id) are due now. Taken
-- under the key's lock; SKIP LOCKED leaves a job a claim holds to that claim.
WITH w AS (
    SELECT id FROM hora_jobs
    WHERE tenant_id = %(tenant_id)s AND concurrency_key = %(key)s
      AND state IN ('scheduled', 'retrying') AND due_at > %(now)s
      AND blocked_on LIKE 'concurrency:%%'
    ORDER BY id
    LIMIT %(n)s
    FOR UPDATE SKIP LOCKED)
UPDATE hora_jobs j SET due_at = %(now)s, updated_at = %(now)s
FROM w WHERE j.id = w.id
RETURNING j.queue;

-- name: job_flow
SELECT flow, concurrency_key FROM hora_jobs WHERE id = %(id)s;

-- name: task_flow
-- A registered task's flow options, for a scheduler pass firing a task its process does not
-- define (read in the pass's own transaction).
SELECT flow FROM hora_task_registry
WHERE tenant_id = %(tenant_id)s AND kind = 'task' AND name = %(name)s;
