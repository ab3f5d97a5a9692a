-- Jobs, their attempts and their state history.
-- Instants are INTEGER microseconds since the Unix epoch, UTC: exact, compact, and they sort.

CREATE TABLE hora_jobs (
    id               TEXT PRIMARY KEY,
    tenant_id        TEXT NOT NULL DEFAULT 'default',
    task             TEXT NOT NULL CHECK (length(task) BETWEEN 1 AND 200),
    payload          TEXT NOT NULL CHECK (json_valid(payload)),
    fingerprint      TEXT NOT NULL,
    queue            TEXT NOT NULL DEFAULT 'default' CHECK (length(queue) BETWEEN 1 AND 200),
    priority         INTEGER NOT NULL DEFAULT 0,
    state            TEXT NOT NULL CHECK (state IN ('scheduled', 'running', 'retrying', 'succeeded',
                                                    'cancelled', 'dead', 'discarded', 'replayed')),
    due_at           INTEGER NOT NULL,
    attempt          INTEGER NOT NULL DEFAULT 0 CHECK (attempt >= 0),
    max_attempts     INTEGER NOT NULL CHECK (max_attempts >= 1),
    retry_policy     TEXT CHECK (retry_policy IS NULL OR json_valid(retry_policy)),
    timeout          REAL CHECK (timeout IS NULL OR timeout > 0),
    idempotency_key  TEXT,
    correlation_id   TEXT,
    lease_owner      TEXT,
    lease_expires_at INTEGER,
    cancel_requested INTEGER NOT NULL DEFAULT 0 CHECK (cancel_requested IN (0, 1)),
    state_reason     TEXT,
    result           TEXT CHECK (result IS NULL OR json_valid(result)),
    last_error       TEXT CHECK (last_error IS NULL OR json_valid(last_error)),
    replay_of        TEXT,
    replayed_as      TEXT,
    created_at       INTEGER NOT NULL,
    updated_at       INTEGER NOT NULL,
    started_at       INTEGER,
    finished_at      INTEGER,
    -- A running job is always leased; a finished one never is and always says when it ended.
    CHECK (state <> 'running' OR (lease_owner IS NOT NULL AND lease_expires_at IS NOT NULL
                                  AND attempt >= 1 AND started_at IS NOT NULL)),
    CHECK (state NOT IN ('succeeded', 'cancelled', 'dead', 'discarded', 'replayed')
           OR (lease_owner IS NULL AND finished_at IS NOT NULL)),
    CHECK (state <> 'replayed' OR replayed_as IS NOT NULL),
    CHECK ((lease_owner IS NULL) = (lease_expires_at IS NULL))
);

-- Claiming: due jobs of a queue in priority order, and upcoming ones by due time.
CREATE INDEX hora_jobs_claim ON hora_jobs (queue, priority, due_at, id)
    WHERE state IN ('scheduled', 'retrying');
CREATE INDEX hora_jobs_due ON hora_jobs (due_at) WHERE state IN ('scheduled', 'retrying');
-- Rescuing jobs whose worker died, and heartbeats of one worker.
CREATE INDEX hora_jobs_lease ON hora_jobs (lease_owner) WHERE lease_owner IS NOT NULL;
CREATE INDEX hora_jobs_lease_expiry ON hora_jobs (lease_expires_at) WHERE state = 'running';
-- Idempotency: one job per key per tenant.
CREATE UNIQUE INDEX hora_jobs_idempotency ON hora_jobs (tenant_id, idempotency_key)
    WHERE idempotency_key IS NOT NULL;
-- Listing, newest first, by state or correlation id.
CREATE INDEX hora_jobs_state ON hora_jobs (tenant_id, state, id);
CREATE INDEX hora_jobs_correlation ON hora_jobs (tenant_id, correlation_id, id)
    WHERE correlation_id IS NOT NULL;

CREATE TABLE hora_job_attempts (
    job_id        TEXT NOT NULL REFERENCES hora_jobs (id) ON DELETE CASCADE,
    attempt       INTEGER NOT NULL CHECK (attempt >= 1),
    worker_id     TEXT,
    started_at    INTEGER NOT NULL,
    ended_at      INTEGER,
    outcome       TEXT CHECK (outcome IS NULL OR outcome IN ('succeeded', 'failed', 'retry', 'timeout',
                                                              'cancelled', 'lost', 'released')),
    error_type    TEXT,
    error_message TEXT,
    traceback     TEXT,
    PRIMARY KEY (job_id, attempt)
) WITHOUT ROWID;

CREATE TABLE hora_job_events (
    id         INTEGER PRIMARY KEY,
    job_id     TEXT NOT NULL REFERENCES hora_jobs (id) ON DELETE CASCADE,
    at         INTEGER NOT NULL,
    from_state TEXT,
    to_state   TEXT NOT NULL,
    attempt    INTEGER NOT NULL,
    reason     TEXT
);
CREATE INDEX hora_job_events_job ON hora_job_events (job_id, id);

-- The transition table of hora.states, enforced by the database as well, so no code path
-- (ours or an operator's hand-written UPDATE) can write an impossible history.
CREATE TRIGGER hora_jobs_transition_guard BEFORE UPDATE OF state ON hora_jobs
WHEN OLD.state IS NOT NEW.state AND (OLD.state || '>' || NEW.state) NOT IN (
    'scheduled>running', 'retrying>running', 'running>succeeded', 'running>retrying',
    'running>dead', 'running>scheduled', 'scheduled>cancelled', 'retrying>cancelled',
    'running>cancelled', 'dead>replayed', 'dead>discarded')
BEGIN
    SELECT RAISE(ABORT, 'hora: illegal job state transition');
END;

-- Every transition leaves an event row: a job's history is a query.
CREATE TRIGGER hora_jobs_event_insert AFTER INSERT ON hora_jobs
BEGIN
    INSERT INTO hora_job_events (job_id, at, from_state, to_state, attempt, reason)
    VALUES (NEW.id, NEW.created_at, NULL, NEW.state, NEW.attempt, NEW.state_reason);
END;

CREATE TRIGGER hora_jobs_event_update AFTER UPDATE OF state ON hora_jobs
WHEN OLD.state IS NOT NEW.state
BEGIN
    INSERT INTO hora_job_events (job_id, at, from_state, to_state, attempt, reason)
    VALUES (NEW.id, NEW.updated_at, OLD.state, NEW.state, NEW.attempt, NEW.state_reason);
END;

-- Every start opens an attempt row; the worker closes it with the outcome.
CREATE TRIGGER hora_jobs_attempt_start AFTER UPDATE OF state ON hora_jobs
WHEN NEW.state = 'running' AND OLD.state IS NOT 'running'
BEGIN
    INSERT INTO hora_job_attempts (job_id, attempt, worker_id, started_at)
    VALUES (NEW.id, NEW.attempt, NEW.lease_owner, NEW.started_at);
END;
