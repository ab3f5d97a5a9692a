-- name: record_attempt_logs
-- The log lines of ended attempts, written in the transaction that recorded them, for the
-- applied outcomes that logged something.
UPDATE hora_job_attempts a
SET logs = l.logs
FROM unnest(%(ids)s::text[], %(attempts)s::integer[], %(logs)s::jsonb[]) AS l (id, attempt, logs)
WHERE a.job_id = l.id AND a.attempt = l.attempt;

-- name: get_attempt_logs
SELECT attempt, logs FROM hora_job_attempts WHERE job_id = %(id)s AND logs IS NOT NULL;
