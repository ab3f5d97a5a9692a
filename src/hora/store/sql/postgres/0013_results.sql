-- Waiting for results (app.wait_for_job, GET /v1/jobs/{id}?wait=) and per-attempt log lines.
--
-- A job or workflow that reaches its end announces itself on the channel ``hora_results``
-- (payload ``job:<id>`` or ``workflow:<id>``), delivered when the moving transaction commits;
-- each API or SDK process LISTENs on one connection and wakes its waiters. A row trigger with
-- a WHEN clause: it is evaluated in C for every updated row and calls the function only for
-- the rows that just ended, so a heartbeat or a claim (no state change to an end) costs
-- nothing, and a lost notification costs latency only (waiters also poll, slowly).
CREATE FUNCTION hora_announce_job_done() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('hora_results', 'job:' || NEW.id);
    RETURN NULL;
END $$;

CREATE TRIGGER hora_jobs_done AFTER UPDATE OF state ON hora_jobs
FOR EACH ROW
WHEN (NEW.state IN ('succeeded', 'cancelled', 'dead', 'discarded', 'replayed')
      AND OLD.state IS DISTINCT FROM NEW.state)
EXECUTE FUNCTION hora_announce_job_done();

CREATE FUNCTION hora_announce_workflow_done() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('hora_results', 'workflow:' || NEW.id);
    RETURN NULL;
END $$;

CREATE TRIGGER hora_workflows_done AFTER UPDATE OF state ON hora_workflows
FOR EACH ROW
WHEN (NEW.state IN ('completed', 'failed', 'cancelled') AND OLD.state IS DISTINCT FROM NEW.state)
EXECUTE FUNCTION hora_announce_workflow_done();

-- What the handler logged during the attempt (stdlib logging records, bounded by the worker):
-- a JSON array of {"at", "level", "message"}; NULL when it logged nothing.
ALTER TABLE hora_job_attempts ADD COLUMN logs jsonb;
