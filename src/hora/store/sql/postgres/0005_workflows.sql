-- Durable workflows: a row each, the journal of their calls, and the signals sent to them.
-- As in 0001: instants are timestamptz, ids compare byte-wise (COLLATE "C", so listings walk
-- them in the same order as SQLite), JSON is jsonb and errors are JSON objects like a job's
-- last_error. No FOREIGN KEY ties history or signals to their workflow: they are only written
-- by the store's own methods, which check the workflow first, and a per-row referential check
-- would tax every journaled step.

CREATE TABLE hora_workflows (
    tenant_id        text NOT NULL,
    id               text COLLATE "C" NOT NULL,
    name             text NOT NULL,
    args             jsonb NOT NULL,
    state            text NOT NULL CHECK (state IN ('running', 'sleeping', 'waiting',
                                                    'compensating', 'completed', 'failed',
                                                    'cancelled')),
    result           jsonb,  -- NULL for None
    error            jsonb,  -- {"type", "message", "traceback"}
    correlation_id   text,
    parent_id        text COLLATE "C",
    wait_kind        text,  -- sleep | signal | child
    wait_name        text,
    wait_until       timestamptz,
    cancel_requested boolean NOT NULL DEFAULT false,
    cancel_reason    text,
    compensation     text,  -- NULL | running | completed | failed
    run_owner        text,  -- the run lease: who advances the workflow now, and until when
    run_until        timestamptz,
    created_at       timestamptz NOT NULL,
    updated_at       timestamptz NOT NULL,
    finished_at      timestamptz,
    version          integer NOT NULL DEFAULT 0,  -- bumped by every write of the row
    PRIMARY KEY (tenant_id, id),
    CHECK ((run_owner IS NULL) = (run_until IS NULL)),
    -- A finished workflow is never leased and always says when it ended.
    CHECK (state NOT IN ('completed', 'failed', 'cancelled')
           OR (run_owner IS NULL AND finished_at IS NOT NULL))
);

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
    tenant_id   text NOT NULL,
    workflow_id text COLLATE "C" NOT NULL,
    seq         integer NOT NULL CHECK (seq >= 0),
    kind        text NOT NULL,  -- step, sleep, signal, child, now, random, uuid, rollback, ...
    name        text NOT NULL,
    input       jsonb,  -- NULL for None
    output      jsonb,  -- NULL for None
    error       jsonb,  -- {"type", "message", "traceback"}
    status      text NOT NULL CHECK (status IN ('pending', 'done', 'failed')),
    attempts    integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    started_at  timestamptz NOT NULL,
    finished_at timestamptz,
    deadline    timestamptz,
    PRIMARY KEY (tenant_id, workflow_id, seq)
);

-- Signals, kept in the order sent: ord comes from a sequence, so order never hangs on
-- clocks or ids.
CREATE TABLE hora_workflow_signals (
    id           text COLLATE "C" PRIMARY KEY,
    tenant_id    text NOT NULL,
    workflow_id  text COLLATE "C" NOT NULL,
    ord          bigint GENERATED ALWAYS AS IDENTITY,
    name         text NOT NULL,
    payload      jsonb,  -- NULL for None
    actor        text,
    comment      text,
    sent_at      timestamptz NOT NULL,
    consumed_seq integer  -- the journal position that consumed it; NULL while it waits
);
CREATE INDEX hora_workflow_signals_order ON hora_workflow_signals (tenant_id, workflow_id, ord);
-- "The oldest unconsumed signal of this name": the head of one index range.
CREATE INDEX hora_workflow_signals_waiting ON hora_workflow_signals (tenant_id, workflow_id,
                                                                     name, ord)
    WHERE consumed_seq IS NULL;
