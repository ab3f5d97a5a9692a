-- The due jobs a worker may reserve ahead of their instant: those without gates (a gated
-- job starts only through the claim, which checks its gates). Without it, every claim's
-- reservation walked past each gated job due within the look-ahead: with thousands of
-- rate-limited jobs pushed to their slots, that scan cost more than the claim itself.
CREATE INDEX hora_jobs_reservable ON hora_jobs (due_at)
    WHERE state IN ('scheduled', 'retrying') AND flow IS NULL;
