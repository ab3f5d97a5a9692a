-- Per-attempt log lines (what the handler logged, bounded by the worker): a JSON array of
-- {"at", "level", "message"}; NULL when it logged nothing. (Waiting for results needs no
-- schema on SQLite: waiters in the worker's process are woken by it, others poll.)
ALTER TABLE hora_job_attempts ADD COLUMN logs TEXT;
