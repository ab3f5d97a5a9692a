-- Why a schedule's trigger cannot be evaluated (it raised or exceeded its work budget), set by
-- the scheduler pass, which then stops looking at it (next_fire_at NULL) instead of retrying
-- every minute; an edit of the schedule or a resume clears it.
ALTER TABLE hora_schedules ADD COLUMN error TEXT;
