-- Schedules declared in code (``@app.schedule``, ``app.schedules.apply_declared``): a mark
-- per schedule, so a later start-up can tell a schedule removed from the code (reported,
-- optionally paused) from one created by hand over the API or the CLI (never touched).
-- A separate table, not a column: the schedule row and its wire form stay as they are.
-- Deleting a schedule deletes its mark explicitly, as it does its ticks.
CREATE TABLE hora_declared_schedules (
    schedule_id text COLLATE "C" PRIMARY KEY,
    tenant_id   text NOT NULL,
    declared_at timestamptz NOT NULL  -- when a start-up last found it in the code
);
CREATE INDEX hora_declared_schedules_tenant ON hora_declared_schedules (tenant_id, schedule_id);
