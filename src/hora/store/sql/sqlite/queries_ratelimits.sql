-- Named queries of run-time rate limits (hora_rate_limits), the buckets the API's request
-- limit takes from (hora_rate_buckets), and the waiting-by-reason gauge. Instants: INTEGER
-- microseconds.

-- name: set_rate_limit
INSERT INTO hora_rate_limits (tenant_id, name, count, period, burst, updated_at)
VALUES (:tenant_id, :name, :count, :period, :burst, :updated_at)
ON CONFLICT (tenant_id, name) DO UPDATE
SET count = excluded.count, period = excluded.period, burst = excluded.burst,
    updated_at = excluded.updated_at
RETURNING *;

-- name: clamp_rate_buckets
-- A changed limit: no bucket of the name owes more than the new limit fully spent.
UPDATE hora_rate_buckets
SET tat = min(tat, :horizon), slot = CASE WHEN slot > :horizon THEN :horizon ELSE slot END
WHERE tenant_id = :tenant_id AND name = :name AND (tat > :horizon OR slot > :horizon);

-- name: get_rate_limit
SELECT * FROM hora_rate_limits WHERE tenant_id = :tenant_id AND name = :name;

-- name: list_rate_limits
SELECT * FROM hora_rate_limits WHERE tenant_id = :tenant_id ORDER BY name LIMIT :limit;

-- name: delete_rate_limit
DELETE FROM hora_rate_limits WHERE tenant_id = :tenant_id AND name = :name;

-- name: get_rate_bucket
SELECT tat FROM hora_rate_buckets
WHERE tenant_id = :tenant_id AND name = :name AND key = :key;

-- name: put_rate_bucket
INSERT INTO hora_rate_buckets (tenant_id, name, key, tat) VALUES (:tenant_id, :name, :key, :tat)
ON CONFLICT (tenant_id, name, key) DO UPDATE SET tat = excluded.tat;

-- name: waiting_blocked
-- Jobs a claim passed over, by what held them (the partial index hora_jobs_blocked).
SELECT blocked_on, count(*) AS n FROM hora_jobs
WHERE blocked_on IS NOT NULL AND state IN ('scheduled', 'retrying')
GROUP BY blocked_on ORDER BY n DESC, blocked_on LIMIT :limit;

-- name: waiting_paused
-- Due waiting jobs of paused queues, every tenant, by queue name (hora_jobs_queue_state).
SELECT q.name AS name, count(*) AS n
FROM hora_queues q
JOIN hora_jobs j ON j.tenant_id = q.tenant_id AND j.queue = q.name
WHERE q.paused = 1 AND j.state IN ('scheduled', 'retrying') AND j.due_at <= :now
GROUP BY q.name ORDER BY n DESC, q.name LIMIT :limit;

-- name: release_rate_blocked
-- A changed limit: the jobs it pushed to slots computed at the old rate are due again now,
-- so the next claim gives them slots at the new one (a raised limit would otherwise wait for
-- the old, later slots). Bounded: the rest keep their slots and are re-planned when due.
UPDATE hora_jobs SET due_at = :now
WHERE id IN (SELECT id FROM hora_jobs INDEXED BY hora_jobs_blocked
             WHERE blocked_on = :blocked_on AND state IN ('scheduled', 'retrying')
               AND tenant_id = :tenant_id AND due_at > :now
             LIMIT :limit);

-- name: prune_rate_buckets
-- Buckets long full again (tat and any promised slot well past): the same as no row.
DELETE FROM hora_rate_buckets
WHERE (tenant_id, name, key) IN (
    SELECT tenant_id, name, key FROM hora_rate_buckets INDEXED BY hora_rate_buckets_tat
    WHERE tat < :before AND (slot IS NULL OR slot < :before)
    LIMIT :limit);
