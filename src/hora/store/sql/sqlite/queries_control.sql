-- Job control (docs/flow.md "Job control"): reschedule or run now a waiting job, cancel
-- waiting jobs in bulk by filter. Instants: INTEGER microseconds.

-- name: reschedule_waiting
-- A new due time for a waiting job; a reservation (a worker's lease on an upcoming job) is
-- dropped, so the job is claimed at its new time by whoever is free. The state does not
-- change, so the event trigger records nothing: record_control_event does.
UPDATE hora_jobs
SET due_at = :due_at, lease_owner = NULL, lease_expires_at = NULL, state_reason = :reason,
    updated_at = :now
WHERE id = :id AND tenant_id = :tenant_id AND state IN ('scheduled', 'retrying')
RETURNING state, attempt, queue;

-- name: record_control_event
-- A control that leaves the state as it is (a reschedule) still shows in the job's history:
-- an event from the state to itself, with the reason.
INSERT INTO hora_job_events (job_id, at, from_state, to_state, attempt, reason)
VALUES (:id, :now, :state, :state, :attempt, :reason);

-- name: select_cancellable
-- One batch of a bulk cancel: the tenant's matching waiting jobs (and, with
-- include_running, running ones not yet asked to stop), in id order after :after.
-- The FILTERS marker becomes the cursor condition (after the first batch), the states
-- condition (waiting, or with include_running waiting or running not yet asked to stop:
-- written out, so a partial index on the waiting states applies) and one "AND column = :param" per filter given, so an indexed filter
-- (correlation_id, schedule_id) walks its index.
SELECT id, state FROM hora_jobs
WHERE tenant_id = :tenant_id
  AND (:include_internal OR substr(task, 1, 14) <> 'hora.workflow:')
  /*FILTERS*/
ORDER BY id
LIMIT :limit;

-- name: cancel_waiting_ids
UPDATE hora_jobs
SET state = 'cancelled', lease_owner = NULL, lease_expires_at = NULL, state_reason = :reason,
    updated_at = :now, finished_at = :now
WHERE id IN (SELECT value FROM json_each(:ids)) AND tenant_id = :tenant_id
  AND state IN ('scheduled', 'retrying')
RETURNING id;

-- name: request_cancel_ids
UPDATE hora_jobs SET cancel_requested = 1, state_reason = :reason, updated_at = :now
WHERE id IN (SELECT value FROM json_each(:ids)) AND tenant_id = :tenant_id
  AND state = 'running' AND cancel_requested = 0
RETURNING id;
