-- Named queries of the in-app inbox (hora_inbox). Instants: INTEGER microseconds.

-- name: add_inbox_item
-- The delivery's id is the item's: a retried delivery stores nothing twice.
INSERT INTO hora_inbox (tenant_id, recipient_id, id, notification_id, category, subject, text,
                        data, created_at)
VALUES (:tenant_id, :recipient_id, :id, :notification_id, :category, :subject, :text, :data,
        :created_at)
ON CONFLICT (tenant_id, recipient_id, id) DO NOTHING;

-- name: get_inbox_item
SELECT * FROM hora_inbox WHERE tenant_id = :tenant_id AND recipient_id = :recipient_id
  AND id = :id;

-- name: list_inbox
-- Newest first, keyset on (created_at, id) before the cursor's. status: all (not archived),
-- unread, read (and not archived), archived.
SELECT * FROM hora_inbox
WHERE tenant_id = :tenant_id AND recipient_id = :recipient_id
  AND (:after_at IS NULL OR (created_at, id) < (:after_at, :after_id))
  AND CASE :status
        WHEN 'all' THEN archived_at IS NULL
        WHEN 'unread' THEN archived_at IS NULL AND read_at IS NULL
        WHEN 'read' THEN archived_at IS NULL AND read_at IS NOT NULL
        ELSE archived_at IS NOT NULL END
ORDER BY created_at DESC, id DESC LIMIT :limit;

-- name: mark_inbox
-- One action on the recipient's items of the list; only the items it changes are touched
-- (and counted): read sets read_at, unread clears it, archived sets archived_at,
-- unarchived clears it.
UPDATE hora_inbox
SET read_at = CASE :action WHEN 'read' THEN :now WHEN 'unread' THEN NULL ELSE read_at END,
    archived_at = CASE :action WHEN 'archived' THEN :now WHEN 'unarchived' THEN NULL
                  ELSE archived_at END
WHERE tenant_id = :tenant_id AND recipient_id = :recipient_id
  AND id IN (SELECT value FROM json_each(:ids))
  AND CASE :action
        WHEN 'read' THEN read_at IS NULL
        WHEN 'unread' THEN read_at IS NOT NULL
        WHEN 'archived' THEN archived_at IS NULL
        ELSE archived_at IS NOT NULL END;

-- name: inbox_counts
-- Unread through the partial index hora_inbox_unread; total: the feed (not archived).
SELECT (SELECT count(*) FROM hora_inbox INDEXED BY hora_inbox_unread
        WHERE tenant_id = :tenant_id AND recipient_id = :recipient_id
          AND read_at IS NULL AND archived_at IS NULL) AS unread,
       (SELECT count(*) FROM hora_inbox
        WHERE tenant_id = :tenant_id AND recipient_id = :recipient_id
          AND archived_at IS NULL) AS total;
