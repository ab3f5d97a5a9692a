-- Notifications and their deliveries (hora.notify.service, docs/notifications.md).

-- name: expire_dedup
-- A dedup key past its window no longer holds: the next notify with it is a new one.
UPDATE hora_notifications SET dedup_key = NULL
WHERE tenant_id = %(tenant_id)s AND recipient_id = %(recipient_id)s AND dedup_key = %(dedup_key)s
  AND dedup_until <= %(now)s;

-- name: find_dedup
SELECT id, fingerprint FROM hora_notifications
WHERE tenant_id = %(tenant_id)s AND recipient_id = %(recipient_id)s AND dedup_key = %(dedup_key)s;

-- name: insert_notification
INSERT INTO hora_notifications (id, tenant_id, recipient_id, category, template, data,
    correlation_id, dedup_key, dedup_until, fingerprint, requested_at, deliver_at, note,
    created_at)
VALUES (%(id)s, %(tenant_id)s, %(recipient_id)s, %(category)s, %(template)s, %(data)s::jsonb, %(correlation_id)s,
        %(dedup_key)s, %(dedup_until)s, %(fingerprint)s, %(requested_at)s, %(deliver_at)s, %(note)s, %(now)s);

-- name: insert_delivery
INSERT INTO hora_deliveries (notification_id, channel, tenant_id, state, reason, address,
                             job_id, digest_at, updated_at)
VALUES (%(notification_id)s, %(channel)s, %(tenant_id)s, %(state)s, %(reason)s, %(address)s, %(job_id)s,
        %(digest_at)s, %(now)s);

-- name: get_notification
SELECT id, tenant_id, recipient_id, category, template, data, deliver_at, created_at,
       correlation_id, dedup_key, requested_at, note
FROM hora_notifications WHERE tenant_id = %(tenant_id)s AND id = %(id)s;

-- name: deliveries_of
SELECT notification_id, channel, state, reason, address, job_id, provider_id, updated_at,
       digest_at
FROM hora_deliveries WHERE notification_id = ANY(%(ids)s::text[])
ORDER BY notification_id, channel;

-- name: list_notifications
SELECT id, tenant_id, recipient_id, category, template, data, deliver_at, created_at,
       correlation_id, dedup_key, requested_at, note
FROM hora_notifications
WHERE tenant_id = %(tenant_id)s
  AND (%(recipient_id)s::text IS NULL OR recipient_id = %(recipient_id)s)
  AND (%(correlation_id)s::text IS NULL OR correlation_id = %(correlation_id)s)
  AND (%(category)s::text IS NULL OR category = %(category)s)
  AND (%(after)s::text IS NULL OR id < %(after)s)
ORDER BY id DESC LIMIT %(limit)s;

-- name: set_delivery
-- A delivery already final (sent, failed, suppressed) is not moved back by a late retry.
UPDATE hora_deliveries SET state = %(state)s, reason = %(reason)s,
    provider_id = coalesce(%(provider_id)s::text, provider_id), updated_at = %(now)s
WHERE notification_id = %(notification_id)s AND channel = %(channel)s AND tenant_id = %(tenant_id)s
  AND (state = 'scheduled' OR %(state)s::text = 'delivered');

-- name: delivery_counts
SELECT channel, state, count(*) FROM hora_deliveries WHERE tenant_id = %(tenant_id)s
GROUP BY channel, state;

-- name: lock_dedup
-- Two notifies with one dedup key at once: the second waits, then finds the first.
SELECT pg_advisory_xact_lock(hashtextextended(%(tenant_id)s || chr(1) || %(recipient_id)s
                                              || chr(1) || %(dedup_key)s, 7));

-- name: job_state
-- A digest's job found by its key: still waiting (locked, so no claim starts it before this
-- transaction's delivery is folded in), or gone past (then the delivery needs another).
SELECT state FROM hora_jobs WHERE id = %(id)s FOR UPDATE;

-- name: digest_items
SELECT n.id, n.template, n.data, n.created_at, n.correlation_id
FROM hora_deliveries d JOIN hora_notifications n ON n.id = d.notification_id
WHERE d.job_id = %(job_id)s AND d.tenant_id = %(tenant_id)s AND d.state = 'scheduled'
ORDER BY n.id;

-- name: finish_digest
UPDATE hora_deliveries SET state = %(state)s, reason = %(reason)s, provider_id = %(provider_id)s,
    updated_at = %(now)s
WHERE job_id = %(job_id)s AND tenant_id = %(tenant_id)s AND state = 'scheduled';

-- name: count_direct
-- How many of the recipient's notifications of a category went (or go) out on their own
-- since an instant: what a cap with over_limit="digest" compares with.
SELECT count(DISTINCT n.id) FROM hora_notifications n
JOIN hora_deliveries d ON d.notification_id = n.id
WHERE n.tenant_id = %(tenant_id)s AND n.recipient_id = %(recipient_id)s AND n.category = %(category)s
  AND n.created_at >= %(since)s AND d.digest_at IS NULL AND d.state <> 'suppressed';
