-- Durable workflows: a row each, the journal of their calls, and the signals sent to them.
-- As in 0001: instants are INTEGER microseconds since the Unix epoch, UTC; JSON is text written
-- by json.dumps; errors are JSON objects like a job's last_error. No FOREIGN KEY ties history
-- or signals to their workflow: they are only written by the store's own methods, which check
-- the workflow first, and a per-row referential check would tax every journaled step.

CREATE TABLE hora_workflows (
    tenant_id        TEXT NOT NULL,
    id               TEXT NOT NULL,
    name             TEXT NOT NULL,
    args             TEXT NOT NULL,  -- JSON object
    state            TEXT NOT NULL CHECK (state IN ('running', 'sleeping', 'waiting',
                                                    'compensating', 'completed', 'failed',
                                                    'cancelled')),
    result           TEXT,  -- JSON; NULL for None
    error            TEXT,  -- JSON {"type", "message", "traceback"}
    correlation_id   TEXT,
    parent_id        TEXT,
    wait_kind        TEXT,  -- sleep | signal | child
    wait_name        TEXT,
    wait_until       INTEGER,
    cancel_requested INTEGER NOT NULL DEFAULT 0 CHECK (cancel_requested IN (0, 1)),
    cancel_reason    TEXT,
    compensation     TEXT,  -- NULL | running | completed | failed
    run_owner        TEXT,  -- the run lease: who advances the workflow now, and until when
    run_until        INTEGER,
    created_at       INTEGER NOT NULL,
    updated_at       INTEGER NOT NULL,
    finished_at      INTEGER,
    version          INTEGER NOT NULL DEFAULT 0,  -- bumped by every write of the row
    PRIMARY KEY (tenant_id, id),
    CHECK ((run_owner IS NULL) = (run_until IS NULL)),
    -- A finished workflow is never leased and always says when it ended.
    CHECK (state NOT IN ('completed', 'failed', 'cancelled')
           OR (run_owner IS NULL AND finished_at IS NOT NULL))
) WITHOUT ROWID;

-- Listing, newest first: all of a tenant's workflows, by state (the approvals inbox is
-- "waiting"), by correlation id, and a parent's children.
CREATE INDEX hora_workflows_created ON hora_workflows (tenant_id, created_at, id);
CREATE INDEX hora_workflows_state ON hora_workflows (tenant_id, state, created_at, id);
CREATE INDEX hora_workflows_correlation ON hora_workflows (tenant_id, correlation_id,
                                                           created_at, id)
    WHERE correlation_id IS NOT NULL;
CREATE INDEX hora_workflows_parent ON hora_workflows (tenant_id, parent_id, created_at, id)
    WHERE parent_id IS NOT NULL;

-- The journal: one row per call, by position. A replay reads it in seq order.
CREATE TABLE hora_workflow_history (
    tenant_id   TEXT NOT NULL,
    workflow_id TEXT NOT NULL,
    seq         INTEGER NOT NULL CHECK (seq >= 0),
    kind        TEXT NOT NULL,  -- step, sleep, signal, child, now, random, uuid, rollback, ...
    name        TEXT NOT NULL,
    input       TEXT,  -- JSON; NULL for None
    output      TEXT,  -- JSON; NULL for None
    error       TEXT,  -- JSON {"type", "message", "traceback"}
    status      TEXT NOT NULL CHECK (status IN ('pending', 'done', 'failed')),
    attempts    INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    started_at  INTEGER NOT NULL,
    finished_at INTEGER,
    deadline    INTEGER,
    PRIMARY KEY (tenant_id, workflow_id, seq)
) WITHOUT ROWID;

-- Signals, kept in the order sent: ord counts up per workflow (assigned in the inserting
-- write transaction, which SQLite runs one at a time), so order never hangs on clocks or ids.
CREATE TABLE hora_workflow_signals (
    id           TEXT PRIMARY KEY,
    tenant_id    TEXT NOT NULL,
    workflow_id  TEXT NOT NULL,
    ord          INTEGER NOT NULL,
    name         TEXT NOT NULL,
    payload      TEXT,  -- JSON; NULL for None
    actor        TEXT,
    comment      TEXT,
    sent_at      INTEGER NOT NULL,
    consumed_seq INTEGER  -- the journal position that consumed it; NULL while it waits
);
CREATE UNIQUE INDEX hora_workflow_signals_order ON hora_workflow_signals (tenant_id,
                                                                          workflow_id, ord);
-- "The oldest unconsumed signal of this name": the head of one index range.
CREATE INDEX hora_workflow_signals_waiting ON hora_workflow_signals (tenant_id, workflow_id,
                                                                     name, ord)
    WHERE consumed_seq IS NULL;
