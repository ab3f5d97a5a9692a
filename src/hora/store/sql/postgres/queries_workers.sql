-- Named queries of the workers aggregate (hora_workers, hora_queues) and the queue views
-- over hora_jobs. Instants are timestamptz; lists arrive as arrays.

-- name: register_worker
-- A worker's row at start: a restart under the same id starts afresh.
INSERT INTO hora_workers (id, host, pid, version, queues, tasks, workflows, concurrency,
                          heartbeat, started_at, last_seen_at, running, stopped_at)
VALUES (%(id)s, %(host)s, %(pid)s, %(version)s, %(queues)s, %(tasks)s, %(workflows)s,
        %(concurrency)s, %(heartbeat)s, %(started_at)s, %(last_seen_at)s, %(running)s, NULL)
ON CONFLICT (id) DO UPDATE
SET host = excluded.host, pid = excluded.pid, version = excluded.version,
    queues = excluded.queues, tasks = excluded.tasks, workflows = excluded.workflows,
    concurrency = excluded.concurrency, heartbeat = excluded.heartbeat,
    started_at = excluded.started_at, last_seen_at = excluded.last_seen_at,
    running = excluded.running, stopped_at = NULL;

-- name: touch_worker
UPDATE hora_workers SET last_seen_at = %(now)s, running = %(running)s, stopped_at = NULL
WHERE id = %(id)s;

-- name: forget_workers
-- Rows not seen since :before, oldest first, a bounded batch (hora_workers_seen); rows
-- another heartbeat is deleting are skipped, not waited for.
DELETE FROM hora_workers
WHERE id IN (SELECT id FROM hora_workers WHERE last_seen_at < %(before)s
             ORDER BY last_seen_at LIMIT %(limit)s FOR UPDATE SKIP LOCKED);

-- name: stop_worker
UPDATE hora_workers SET last_seen_at = %(now)s, running = 0, stopped_at = %(now)s
WHERE id = %(id)s;

-- name: list_workers
SELECT * FROM hora_workers ORDER BY started_at DESC, id LIMIT %(limit)s;

-- name: queue_depths
-- One tenant's unfinished and dead jobs by (queue, state), one range of
-- hora_jobs_queue_state; due and oldest_due look at the waiting jobs due at now.
SELECT queue, state, count(*) AS n,
       count(*) FILTER (WHERE state IN ('scheduled', 'retrying') AND due_at <= %(now)s) AS due,
       min(due_at) FILTER (WHERE state IN ('scheduled', 'retrying') AND due_at <= %(now)s)
           AS oldest_due
FROM hora_jobs
WHERE tenant_id = %(tenant_id)s AND state IN ('scheduled', 'retrying', 'running', 'dead')
GROUP BY queue, state;

-- name: due_waiting_tasks
-- Waiting jobs due at now by (queue, task), over every tenant (or one's), read from
-- hora_jobs_due: what the unrunnable gauge and a worker's idle warning compare with the
-- workers that could run them.
SELECT queue, task, count(*) AS n FROM hora_jobs
WHERE state IN ('scheduled', 'retrying') AND due_at <= %(now)s
  AND (%(tenant_id)s::text IS NULL OR tenant_id = %(tenant_id)s::text)
  AND (%(queues)s::text[] IS NULL OR queue = ANY(%(queues)s::text[]))
GROUP BY queue, task
ORDER BY queue, task
LIMIT %(limit)s;

-- name: set_queue_paused
INSERT INTO hora_queues (tenant_id, name, paused, paused_at, reason)
VALUES (%(tenant_id)s, %(name)s, %(paused)s, %(paused_at)s, %(reason)s)
ON CONFLICT (tenant_id, name) DO UPDATE
SET paused = excluded.paused, paused_at = excluded.paused_at, reason = excluded.reason
RETURNING *;

-- name: list_queue_states
SELECT * FROM hora_queues WHERE tenant_id = %(tenant_id)s ORDER BY name;
