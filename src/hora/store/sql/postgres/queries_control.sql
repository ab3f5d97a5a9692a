-- Job control (docs/flow.md "Job control"): reschedule or run now a waiting job, cancel
-- waiting jobs in bulk by filter.

-- name: reschedule_waiting
-- A new due time for a waiting job; a reservation (a worker's lease on an upcoming job) is
-- dropped, so the job is claimed at its new time by whoever is free. The state does not
-- change, so the event trigger records nothing: record_control_event does.
UPDATE hora_jobs
SET due_at = %(due_at)s, lease_owner = NULL, lease_expires_at = NULL,
    state_reason = %(reason)s, updated_at = %(now)s
WHERE id = %(id)s AND tenant_id = %(tenant_id)s AND state IN ('scheduled', 'retrying')
RETURNING state, attempt, queue;

-- name: record_control_event
-- A control that leaves the state as it is (a reschedule) still shows in the job's history:
-- an event from the state to itself, with the reason.
INSERT INTO hora_job_events (job_id, at, from_state, to_state, attempt, reason)
VALUES (%(id)s, %(now)s, %(state)s, %(state)s, %(attempt)s, %(reason)s);

-- name: select_cancellable
-- One batch of a bulk cancel: the tenant's matching waiting jobs (and, with
-- include_running, running ones not yet asked to stop), in id order after the given id, locked
-- in that order (claims skip locked rows; a job a claim holds is re-checked once it commits).
-- The FILTERS marker becomes the cursor condition (after the first batch), the states
-- condition (waiting, or with include_running waiting or running not yet asked to stop:
-- written out, so a partial index on the waiting states applies) and one "AND column = %(param)s" per filter given.
SELECT id, state FROM hora_jobs
WHERE tenant_id = %(tenant_id)s
  AND (%(include_internal)s::boolean OR left(task, 14) <> 'hora.workflow:')
  /*FILTERS*/
ORDER BY id
LIMIT %(limit)s
FOR UPDATE;

-- name: cancel_waiting_ids
-- The ids come from select_cancellable (the tenant's, locked by this transaction): matched
-- by id alone, an index probe each even before the planner has statistics (a tenant_id
-- condition here lets a stale plan scan the tenant's jobs against the array instead).
UPDATE hora_jobs
SET state = 'cancelled', lease_owner = NULL, lease_expires_at = NULL,
    state_reason = %(reason)s, updated_at = %(now)s, finished_at = %(now)s
WHERE id = ANY(%(ids)s::text[]) AND state IN ('scheduled', 'retrying')
RETURNING id;

-- name: request_cancel_ids
UPDATE hora_jobs SET cancel_requested = true, state_reason = %(reason)s, updated_at = %(now)s
WHERE id = ANY(%(ids)s::text[]) AND state = 'running' AND NOT cancel_requested
RETURNING id;
