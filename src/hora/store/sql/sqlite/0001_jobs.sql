-- Jobs, their attempts and their state history.
-- Instants are INTEGER microseconds since the Unix epoch, UTC: exact, compact, and they sort.

CREATE TABLE hora_jobs (
    id               TEXT PRIMARY KEY,
    tenant_id        TEXT NOT NULL DEFAULT 'default',
    task             TEXT NOT NULL CHECK (length(task) BETWEEN 1 AND 200),
    payload          TEXT NOT NULL,  -- JSON text, always written by json.dumps
    fingerprint      TEXT NOT NULL,
    queue            TEXT NOT NULL DEFAULT 'default' CHECK (length(queue) BETWEEN 1 AND 200),
    priority         INTEGER NOT NULL DEFAULT 0,
    state            TEXT NOT NULL CHECK (state IN ('scheduled', 'running', 'retrying', 'succeeded',
                                                    'cancelled', 'dead', 'discarded', 'replayed')),
    due_at           INTEGER NOT NULL,
    attempt          INTEGER NOT NULL DEFAULT 0 CHECK (attempt >= 0),
    max_attempts     INTEGER NOT NULL CHECK (max_attempts >= 1),
    retry_policy     TEXT,
    timeout          REAL CHECK (timeout IS NULL OR timeout > 0),
    idempotency_key  TEXT,
    correlation_id   TEXT,
    lease_owner      TEXT,
    lease_expires_at INTEGER,
    cancel_requested INTEGER NOT NULL DEFAULT 0 CHECK (cancel_requested IN (0, 1)),
    state_reason     TEXT,
    result           TEXT,
    last_error       TEXT,
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
-- Leased jobs (running or reserved): rescuing those whose worker died, and heartbeats.
CREATE INDEX hora_jobs_leased ON hora_jobs (lease_owner, lease_expires_at)
    WHERE lease_owner IS NOT NULL;
-- Idempotency: one job per key per tenant.
CREATE UNIQUE INDEX hora_jobs_idempotency ON hora_jobs (tenant_id, idempotency_key)
    WHERE idempotency_key IS NOT NULL;
-- Listing, newest first: the dead-letter queue and a correlation id's jobs. Other listings
-- walk the primary key newest-first (ids sort by time), which keyset pagination keeps cheap.
CREATE INDEX hora_jobs_dead ON hora_jobs (tenant_id, id) WHERE state = 'dead';
CREATE INDEX hora_jobs_correlation ON hora_jobs (tenant_id, correlation_id, id)
    WHERE correlation_id IS NOT NULL;

-- One row per *ended* attempt, written with its outcome in the same transaction as the job's
-- move (an attempt in progress is the job row itself: attempt, started_at, lease_owner).
-- Attempts and events carry job_id without a FOREIGN KEY: they are only ever written in the
-- transaction that moves their (locked) job, and a per-row referential check on the hottest
-- path cost more than the rest of the insert. Deleting a job deletes its rows explicitly.
CREATE TABLE hora_job_attempts (
    job_id        TEXT NOT NULL,  -- no FOREIGN KEY: see above
    attempt       INTEGER NOT NULL CHECK (attempt >= 1),
    worker_id     TEXT,
    started_at    INTEGER NOT NULL,
    ended_at      INTEGER NOT NULL,
    outcome       TEXT NOT NULL CHECK (outcome IN ('succeeded', 'failed', 'retry', 'timeout',
                                                   'cancelled', 'lost', 'released')),
    error_type    TEXT,
    error_message TEXT,
    traceback     TEXT,
    PRIMARY KEY (job_id, attempt)
) WITHOUT ROWID;

CREATE TABLE hora_job_events (
    id         INTEGER PRIMARY KEY,
    job_id     TEXT NOT NULL,  -- no FOREIGN KEY: see above
    at         INTEGER NOT NULL,
    from_state TEXT,
    to_state   TEXT NOT NULL,
    attempt    INTEGER NOT NULL,
    reason     TEXT
);
CREATE INDEX hora_job_events_job ON hora_job_events (job_id, id);

-- Every transition leaves an event row: a job's history is a query. (Creation is not a
-- transition; its row is the job itself, and get_job puts it first in the history.)
CREATE TRIGGER hora_jobs_event_update AFTER UPDATE OF state ON hora_jobs
WHEN OLD.state IS NOT NEW.state
BEGIN
    INSERT INTO hora_job_events (job_id, at, from_state, to_state, attempt, reason)
    VALUES (NEW.id, NEW.updated_at, OLD.state, NEW.state, NEW.attempt, NEW.state_reason);
END;
