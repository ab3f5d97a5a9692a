-- Named queries of the in-app inbox (hora_inbox).

-- name: add_inbox_item
-- The delivery's id is the item's: a retried delivery stores nothing twice.
INSERT INTO hora_inbox (tenant_id, recipient_id, id, notification_id, category, subject, text,
                        data, created_at)
VALUES (%(tenant_id)s, %(recipient_id)s, %(id)s, %(notification_id)s, %(category)s,
        %(subject)s, %(text)s, %(data)s::jsonb, %(created_at)s)
ON CONFLICT (tenant_id, recipient_id, id) DO NOTHING;

-- name: get_inbox_item
SELECT * FROM hora_inbox WHERE tenant_id = %(tenant_id)s
  AND recipient_id = %(recipient_id)s AND id = %(id)s;

-- name: list_inbox
-- Newest first, keyset on (created_at, id) before the cursor's. status: all (not archived),
-- unread, read (and not archived), archived.
SELECT * FROM hora_inbox
WHERE tenant_id = %(tenant_id)s AND recipient_id = %(recipient_id)s
  AND (%(after_at)s::timestamptz IS NULL
       OR (created_at, id) < (%(after_at)s::timestamptz, %(after_id)s::text))
  AND CASE %(status)s::text
        WHEN 'all' THEN archived_at IS NULL
        WHEN 'unread' THEN archived_at IS NULL AND read_at IS NULL
        WHEN 'read' THEN archived_at IS NULL AND read_at IS NOT NULL
        ELSE archived_at IS NOT NULL END
ORDER BY created_at DESC, id DESC LIMIT %(limit)s;

-- name: mark_inbox
-- One action on the recipient's items of the list; only the items it changes are touched
-- (and counted): read sets read_at, unread clears it, archived sets archived_at,
-- unarchived clears it.
UPDATE hora_inbox
SET read_at = CASE %(action)s::text WHEN 'read' THEN %(now)s::timestamptz WHEN 'unread' THEN NULL ELSE read_at END,
    archived_at = CASE %(action)s::text WHEN 'archived' THEN %(now)s::timestamptz WHEN 'unarchived' THEN NULL
                  ELSE archived_at END
WHERE tenant_id = %(tenant_id)s AND recipient_id = %(recipient_id)s
  AND id = ANY(%(ids)s::text[])
  AND CASE %(action)s::text
        WHEN 'read' THEN read_at IS NULL
        WHEN 'unread' THEN read_at IS NOT NULL
        WHEN 'archived' THEN archived_at IS NULL
        ELSE archived_at IS NOT NULL END;

-- name: inbox_counts
-- Unread through the partial index hora_inbox_unread; total: the feed (not archived).
SELECT count(*) FILTER (WHERE read_at IS NULL) AS unread, count(*) AS total
FROM hora_inbox
WHERE tenant_id = %(tenant_id)s AND recipient_id = %(recipient_id)s AND archived_at IS NULL;
