-- Approval requests: one per wait_for_approval, made once per journal position (workflow, seq)
-- so a replay finds the same one. A decision names the request and moves it once, from
-- pending, with a conditional UPDATE: a repeated or late decision can never answer another
-- request. As in 0001: instants are INTEGER microseconds since the Unix epoch, UTC, from the
-- callers' clocks; JSON is text written by json.dumps.

CREATE TABLE hora_approvals (
    id             TEXT NOT NULL PRIMARY KEY,
    tenant_id      TEXT NOT NULL,
    workflow_id    TEXT NOT NULL,
    workflow_name  TEXT NOT NULL,
    seq            INTEGER NOT NULL CHECK (seq >= 0),
    name           TEXT NOT NULL,
    approvers      TEXT,  -- JSON array of actors (API key names); NULL: any approve key
    context        TEXT,  -- JSON the workflow shows the decider; NULL for None
    state          TEXT NOT NULL CHECK (state IN ('pending', 'approved', 'rejected',
                                                  'expired', 'cancelled')),
    deadline       INTEGER,
    decided_by     TEXT,  -- the actor of a decision
    decided_by_key TEXT,  -- the API key that decided (NULL for the SDK)
    comment        TEXT,
    decided_at     INTEGER,  -- when it left pending (decided, expired or cancelled)
    created_at     INTEGER NOT NULL,
    -- Only pending is open; every other state says when it was reached, and a decision
    -- says by whom.
    CHECK ((state = 'pending') = (decided_at IS NULL)),
    CHECK (state NOT IN ('approved', 'rejected') OR decided_by IS NOT NULL)
) WITHOUT ROWID;

-- One request per journal position: the replay of a wait finds the request it made.
CREATE UNIQUE INDEX hora_approvals_position ON hora_approvals (tenant_id, workflow_id, seq);
-- The inbox: a tenant's requests in a state, newest first.
CREATE INDEX hora_approvals_inbox ON hora_approvals (tenant_id, state, created_at, id);
