-- Named queries of run-time rate limits (hora_rate_limits), the buckets the API's request
-- limit takes from (hora_rate_buckets), and the waiting-by-reason gauge. Bucket instants are
-- bigint microseconds; updated_at is timestamptz.

-- name: set_rate_limit
INSERT INTO hora_rate_limits (tenant_id, name, count, period, burst, updated_at)
VALUES (%(tenant_id)s, %(name)s, %(count)s, %(period)s, %(burst)s, %(updated_at)s)
ON CONFLICT (tenant_id, name) DO UPDATE
SET count = excluded.count, period = excluded.period, burst = excluded.burst,
    updated_at = excluded.updated_at
RETURNING *;

-- name: clamp_rate_buckets
-- A changed limit: no bucket of the name owes more than the new limit fully spent.
UPDATE hora_rate_buckets
SET tat = least(tat, %(horizon)s),
    slot = CASE WHEN slot > %(horizon)s THEN %(horizon)s ELSE slot END  -- NULL stays NULL
WHERE tenant_id = %(tenant_id)s AND name = %(name)s
  AND (tat > %(horizon)s OR slot > %(horizon)s);

-- name: get_rate_limit
SELECT * FROM hora_rate_limits WHERE tenant_id = %(tenant_id)s AND name = %(name)s;

-- name: list_rate_limits
SELECT * FROM hora_rate_limits WHERE tenant_id = %(tenant_id)s ORDER BY name LIMIT %(limit)s;

-- name: delete_rate_limit
DELETE FROM hora_rate_limits WHERE tenant_id = %(tenant_id)s AND name = %(name)s;

-- name: lock_rate_bucket
-- The bucket's row, created if missing (tat 0: a full bucket) and locked until the
-- transaction ends, in one statement: concurrent takers of one bucket queue on the lock.
INSERT INTO hora_rate_buckets AS b (tenant_id, name, key, tat)
VALUES (%(tenant_id)s, %(name)s, %(key)s, 0)
ON CONFLICT (tenant_id, name, key) DO UPDATE SET tat = b.tat
RETURNING tat;

-- name: put_rate_bucket
UPDATE hora_rate_buckets SET tat = %(tat)s
WHERE tenant_id = %(tenant_id)s AND name = %(name)s AND key = %(key)s;

-- name: waiting_blocked
-- Jobs a claim passed over, by what held them (the partial index hora_jobs_blocked).
SELECT blocked_on, count(*) AS n FROM hora_jobs
WHERE blocked_on IS NOT NULL AND state IN ('scheduled', 'retrying')
GROUP BY blocked_on ORDER BY n DESC, blocked_on LIMIT %(limit)s;

-- name: waiting_paused
-- Due waiting jobs of paused queues, every tenant, by queue name (hora_jobs_queue_state).
SELECT q.name AS name, count(*) AS n
FROM hora_queues q
JOIN hora_jobs j ON j.tenant_id = q.tenant_id AND j.queue = q.name
WHERE q.paused AND j.state IN ('scheduled', 'retrying') AND j.due_at <= %(now)s
GROUP BY q.name ORDER BY n DESC, q.name LIMIT %(limit)s;

-- name: release_rate_blocked
-- A changed limit: the jobs it pushed to slots computed at the old rate are due again now,
-- so the next claim gives them slots at the new one (a raised limit would otherwise wait for
-- the old, later slots). Bounded: the rest keep their slots and are re-planned when due.
UPDATE hora_jobs SET due_at = %(now)s
WHERE id IN (SELECT id FROM hora_jobs
             WHERE blocked_on = %(blocked_on)s AND state IN ('scheduled', 'retrying')
               AND tenant_id = %(tenant_id)s AND due_at > %(now)s
             LIMIT %(limit)s
             FOR UPDATE SKIP LOCKED);

-- name: prune_rate_buckets
-- Buckets long full again (tat and any promised slot well past): the same as no row. Rows a
-- claim holds are skipped (it is about to write them).
DELETE FROM hora_rate_buckets
WHERE (tenant_id, name, key) IN (
    SELECT tenant_id, name, key FROM hora_rate_buckets
    WHERE tat < %(before)s AND (slot IS NULL OR slot < %(before)s)
    LIMIT %(limit)s
    FOR UPDATE SKIP LOCKED);
