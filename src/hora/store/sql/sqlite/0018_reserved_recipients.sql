-- PLACEHOLDER of the notify-channels branch: migration 18 belongs to the recipients slice of
-- issue 13. load_migrations wants 1..n without gaps, so this branch carries an empty 18 to
-- run its own 19; at the merge, delete this file (two 0018 files fail load_migrations).
SELECT 1;
