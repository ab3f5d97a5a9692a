-- A version per schedule, bumped by every write (edits and scheduler passes), so an edit made
-- from a stale read is refused instead of overwriting a pass's progress (a lost update).
ALTER TABLE hora_schedules ADD COLUMN version integer NOT NULL DEFAULT 0;
