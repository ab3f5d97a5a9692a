-- Jobs, their attempts and their state history.
-- Instants are timestamptz (microseconds, UTC on the wire: the store sets TimeZone to UTC).
-- Job ids compare byte-wise (COLLATE "C"), as in SQLite, whatever the database's collation:
-- keyset pagination and "newest first" rely on UUIDv7 strings sorting by creation time.

CREATE TABLE hora_jobs (
    id               text COLLATE "C" PRIMARY KEY,
    tenant_id        text NOT NULL DEFAULT 'default',
    task             text NOT NULL CHECK (length(task) BETWEEN 1 AND 200),
    payload          jsonb NOT NULL,
    fingerprint      text NOT NULL,
    queue            text NOT NULL DEFAULT 'default' CHECK (length(queue) BETWEEN 1 AND 200),
    priority         integer NOT NULL DEFAULT 0,
    state            text NOT NULL CHECK (state IN ('scheduled', 'running', 'retrying', 'succeeded',
                                                    'cancelled', 'dead', 'discarded', 'replayed')),
    due_at           timestamptz NOT NULL,
    attempt          integer NOT NULL DEFAULT 0 CHECK (attempt >= 0),
    max_attempts     integer NOT NULL CHECK (max_attempts >= 1),
    retry_policy     jsonb,
    timeout          double precision CHECK (timeout IS NULL OR timeout > 0),
    idempotency_key  text,
    correlation_id   text,
    lease_owner      text,
    lease_expires_at timestamptz,
    cancel_requested boolean NOT NULL DEFAULT false,
    state_reason     text,
    result           jsonb,
    last_error       jsonb,
    replay_of        text COLLATE "C",
    replayed_as      text COLLATE "C",
    created_at       timestamptz NOT NULL,
    updated_at       timestamptz NOT NULL,
    started_at       timestamptz,
    finished_at      timestamptz,
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
    job_id        text COLLATE "C" NOT NULL,  -- no FOREIGN KEY: see above
    attempt       integer NOT NULL CHECK (attempt >= 1),
    worker_id     text,
    started_at    timestamptz NOT NULL,
    ended_at      timestamptz NOT NULL,
    outcome       text NOT NULL CHECK (outcome IN ('succeeded', 'failed', 'retry', 'timeout',
                                                   'cancelled', 'lost', 'released')),
    error_type    text,
    error_message text,
    traceback     text,
    PRIMARY KEY (job_id, attempt)
);

CREATE TABLE hora_job_events (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    job_id     text COLLATE "C" NOT NULL,  -- no FOREIGN KEY: see above
    at         timestamptz NOT NULL,
    from_state text,
    to_state   text NOT NULL,
    attempt    integer NOT NULL,
    reason     text
);
CREATE INDEX hora_job_events_job ON hora_job_events (job_id, id);

-- The transition table of hora.states, enforced by the database as well, so no code path
-- (ours or an operator's hand-written UPDATE) can write an impossible history. An AFTER
-- trigger, so a row that breaks a CHECK constraint is reported as that first; the WHEN clause
-- keeps legal moves from queueing anything.
CREATE FUNCTION hora_jobs_transition_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'hora: illegal job state transition'
        USING ERRCODE = 'integrity_constraint_violation',
              DETAIL = format('job %s: %s -> %s', NEW.id, OLD.state, NEW.state);
END;
$$;

CREATE TRIGGER hora_jobs_transition_guard AFTER UPDATE OF state ON hora_jobs
FOR EACH ROW
WHEN (OLD.state IS DISTINCT FROM NEW.state AND (OLD.state || '>' || NEW.state) NOT IN (
    'scheduled>running', 'retrying>running', 'running>succeeded', 'running>retrying',
    'running>dead', 'running>scheduled', 'scheduled>cancelled', 'retrying>cancelled',
    'running>cancelled', 'dead>replayed', 'dead>discarded'))
EXECUTE FUNCTION hora_jobs_transition_guard();

-- Every transition leaves an event row: a job's history is a query. (Creation is not a
-- transition; its row is the job itself, and get_job puts it first in the history.)
-- Statement-level, over the transition tables: one INSERT ... SELECT per batch of moves
-- instead of one PL/pgSQL call per row, which is what a worker's batched writes need.
CREATE FUNCTION hora_jobs_events() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO hora_job_events (job_id, at, from_state, to_state, attempt, reason)
    SELECT n.id, n.updated_at, o.state, n.state, n.attempt, n.state_reason
    FROM hora_new_rows n JOIN hora_old_rows o ON o.id = n.id
    WHERE o.state IS DISTINCT FROM n.state
    ORDER BY n.updated_at, n.id;
    RETURN NULL;
END;
$$;

CREATE TRIGGER hora_jobs_events AFTER UPDATE ON hora_jobs
REFERENCING OLD TABLE AS hora_old_rows NEW TABLE AS hora_new_rows
FOR EACH STATEMENT EXECUTE FUNCTION hora_jobs_events();
