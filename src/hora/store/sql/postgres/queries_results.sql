-- name: get_attempt_logs
SELECT attempt, logs FROM hora_job_attempts WHERE job_id = %(id)s AND logs IS NOT NULL;
