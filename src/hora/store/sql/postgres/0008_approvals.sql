-- Approval requests: one per wait_for_approval, made once per journal position (workflow, seq)
-- so a replay finds the same one. A decision names the request and moves it once, from
-- pending, with a conditional UPDATE: a repeated or late decision can never answer another
-- request. As in 0001: instants are timestamptz from the callers' clocks, ids compare
-- byte-wise (COLLATE "C", as in SQLite), JSON is jsonb.

CREATE TABLE hora_approvals (
    id             text COLLATE "C" NOT NULL PRIMARY KEY,
    tenant_id      text NOT NULL,
    workflow_id    text COLLATE "C" NOT NULL,
    workflow_name  text NOT NULL,
    seq            integer NOT NULL CHECK (seq >= 0),
    name           text NOT NULL,
    approvers      jsonb,  -- array of actors (API key names); NULL: any approve key
    context        jsonb,  -- what the workflow shows the decider; NULL for None
    state          text NOT NULL CHECK (state IN ('pending', 'approved', 'rejected',
                                                  'expired', 'cancelled')),
    deadline       timestamptz,
    decided_by     text,  -- the actor of a decision
    decided_by_key text,  -- the API key that decided (NULL for the SDK)
    comment        text,
    decided_at     timestamptz,  -- when it left pending (decided, expired or cancelled)
    created_at     timestamptz NOT NULL,
    -- Only pending is open; every other state says when it was reached, and a decision
    -- says by whom.
    CHECK ((state = 'pending') = (decided_at IS NULL)),
    CHECK (state NOT IN ('approved', 'rejected') OR decided_by IS NOT NULL)
);

-- One request per journal position: the replay of a wait finds the request it made.
CREATE UNIQUE INDEX hora_approvals_position ON hora_approvals (tenant_id, workflow_id, seq);
-- The inbox: a tenant's requests in a state, newest first.
CREATE INDEX hora_approvals_inbox ON hora_approvals (tenant_id, state, created_at, id);
