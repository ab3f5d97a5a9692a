-- Named queries of notification recipients (hora_recipients). JSON documents are passed as
-- text and cast to jsonb.

-- name: upsert_recipient
-- A new recipient gets the hash of a token nobody knows (unsubscribe_url rotates it); an
-- existing one keeps its token and created_at, everything else is replaced.
INSERT INTO hora_recipients (tenant_id, id, timezone, locale, quiet_hours, holidays,
                             business_days_only, addresses, preferences, data, token_hash,
                             created_at, updated_at)
VALUES (%(tenant_id)s, %(id)s, %(timezone)s, %(locale)s, %(quiet_hours)s::jsonb, %(holidays)s,
        %(business_days_only)s, %(addresses)s::jsonb, %(preferences)s::jsonb,
        %(data)s::jsonb, %(token_hash)s, %(now)s, %(now)s)
ON CONFLICT (tenant_id, id) DO UPDATE
SET timezone = excluded.timezone, locale = excluded.locale,
    quiet_hours = excluded.quiet_hours, holidays = excluded.holidays,
    business_days_only = excluded.business_days_only, addresses = excluded.addresses,
    preferences = excluded.preferences, data = excluded.data,
    updated_at = excluded.updated_at;

-- name: get_recipient
SELECT * FROM hora_recipients WHERE tenant_id = %(tenant_id)s AND id = %(id)s;

-- name: list_recipients
-- Keyset pagination by id (the primary key's order).
SELECT * FROM hora_recipients
WHERE tenant_id = %(tenant_id)s AND (%(after)s::text IS NULL OR id > %(after)s)
ORDER BY id LIMIT %(limit)s;

-- name: delete_recipient
DELETE FROM hora_recipients WHERE tenant_id = %(tenant_id)s AND id = %(id)s;

-- name: set_recipient_token
UPDATE hora_recipients SET token_hash = %(token_hash)s
WHERE tenant_id = %(tenant_id)s AND id = %(id)s;

-- name: recipient_by_token
SELECT * FROM hora_recipients WHERE token_hash = %(token_hash)s;

-- name: update_recipient_preferences
UPDATE hora_recipients SET preferences = %(preferences)s::jsonb, updated_at = %(now)s
WHERE tenant_id = %(tenant_id)s AND id = %(id)s;
