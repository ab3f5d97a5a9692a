-- name: record_attempt_logs
-- The log lines of ended attempts, written in the transaction that recorded them; :batch is a
-- JSON array of {"id", "attempt", "logs"} for the applied outcomes that logged something.
UPDATE hora_job_attempts
SET logs = l.logs
FROM (SELECT value ->> '$.id' AS id, value ->> '$.attempt' AS attempt,
             value ->> '$.logs' AS logs
      FROM json_each(:batch)) AS l
WHERE hora_job_attempts.job_id = l.id AND hora_job_attempts.attempt = l.attempt;

-- name: get_attempt_logs
SELECT attempt, logs FROM hora_job_attempts WHERE job_id = :id AND logs IS NOT NULL;
