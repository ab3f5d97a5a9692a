-- Named queries of notification recipients (hora_recipients). Instants: INTEGER
-- microseconds; JSON documents as TEXT.

-- name: upsert_recipient
-- A new recipient gets the hash of a token nobody knows (unsubscribe_url rotates it); an
-- existing one keeps its token and created_at, everything else is replaced.
INSERT INTO hora_recipients (tenant_id, id, timezone, locale, quiet_hours, holidays,
                             business_days_only, addresses, preferences, data, token_hash,
                             created_at, updated_at)
VALUES (:tenant_id, :id, :timezone, :locale, :quiet_hours, :holidays, :business_days_only,
        :addresses, :preferences, :data, :token_hash, :now, :now)
ON CONFLICT (tenant_id, id) DO UPDATE
SET timezone = excluded.timezone, locale = excluded.locale,
    quiet_hours = excluded.quiet_hours, holidays = excluded.holidays,
    business_days_only = excluded.business_days_only, addresses = excluded.addresses,
    preferences = excluded.preferences, data = excluded.data,
    updated_at = excluded.updated_at;

-- name: get_recipient
SELECT * FROM hora_recipients WHERE tenant_id = :tenant_id AND id = :id;

-- name: list_recipients
-- Keyset pagination by id (the primary key's order).
SELECT * FROM hora_recipients
WHERE tenant_id = :tenant_id AND (:after IS NULL OR id > :after)
ORDER BY id LIMIT :limit;

-- name: delete_recipient
DELETE FROM hora_recipients WHERE tenant_id = :tenant_id AND id = :id;

-- name: set_recipient_token
UPDATE hora_recipients SET token_hash = :token_hash
WHERE tenant_id = :tenant_id AND id = :id;

-- name: recipient_by_token
SELECT * FROM hora_recipients WHERE token_hash = :token_hash;

-- name: update_recipient_preferences
UPDATE hora_recipients SET preferences = :preferences, updated_at = :now
WHERE tenant_id = :tenant_id AND id = :id;
