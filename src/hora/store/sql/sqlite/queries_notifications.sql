-- Notifications and their deliveries (hora.notify.service, docs/notifications.md).

-- name: expire_dedup
-- A dedup key past its window no longer holds: the next notify with it is a new one.
UPDATE hora_notifications SET dedup_key = NULL
WHERE tenant_id = :tenant_id AND recipient_id = :recipient_id AND dedup_key = :dedup_key
  AND dedup_until <= :now;

-- name: find_dedup
SELECT id, fingerprint FROM hora_notifications
WHERE tenant_id = :tenant_id AND recipient_id = :recipient_id AND dedup_key = :dedup_key;

-- name: insert_notification
INSERT INTO hora_notifications (id, tenant_id, recipient_id, category, template, data,
    correlation_id, dedup_key, dedup_until, fingerprint, requested_at, deliver_at, note,
    created_at)
VALUES (:id, :tenant_id, :recipient_id, :category, :template, :data, :correlation_id,
        :dedup_key, :dedup_until, :fingerprint, :requested_at, :deliver_at, :note, :now);

-- name: insert_delivery
INSERT INTO hora_deliveries (notification_id, channel, tenant_id, state, reason, address,
                             job_id, digest_at, updated_at)
VALUES (:notification_id, :channel, :tenant_id, :state, :reason, :address, :job_id,
        :digest_at, :now);

-- name: get_notification
SELECT id, tenant_id, recipient_id, category, template, data, deliver_at, created_at,
       correlation_id, dedup_key, requested_at, note
FROM hora_notifications WHERE tenant_id = :tenant_id AND id = :id;

-- name: deliveries_of
SELECT notification_id, channel, state, reason, address, job_id, provider_id, updated_at,
       digest_at
FROM hora_deliveries WHERE notification_id IN (SELECT value FROM json_each(:ids))
ORDER BY notification_id, channel;

-- name: list_notifications
SELECT id, tenant_id, recipient_id, category, template, data, deliver_at, created_at,
       correlation_id, dedup_key, requested_at, note
FROM hora_notifications
WHERE tenant_id = :tenant_id
  AND (:recipient_id IS NULL OR recipient_id = :recipient_id)
  AND (:correlation_id IS NULL OR correlation_id = :correlation_id)
  AND (:category IS NULL OR category = :category)
  AND (:after IS NULL OR id < :after)
ORDER BY id DESC LIMIT :limit;

-- name: set_delivery
-- A delivery already final (sent, failed, suppressed) is not moved back by a late retry.
UPDATE hora_deliveries SET state = :state, reason = :reason,
    provider_id = coalesce(:provider_id, provider_id), updated_at = :now
WHERE notification_id = :notification_id AND channel = :channel AND tenant_id = :tenant_id
  AND (state = 'scheduled' OR :state = 'delivered');

-- name: delivery_counts
SELECT channel, state, count(*) FROM hora_deliveries WHERE tenant_id = :tenant_id
GROUP BY channel, state;

-- name: job_state
-- A digest's job found by its key: still waiting (locked, so no claim starts it before this
-- transaction's delivery is folded in), or gone past (then the delivery needs another).
SELECT state FROM hora_jobs WHERE id = :id;

-- name: digest_items
SELECT n.id, n.template, n.data, n.created_at, n.correlation_id
FROM hora_deliveries d JOIN hora_notifications n ON n.id = d.notification_id
WHERE d.job_id = :job_id AND d.tenant_id = :tenant_id AND d.state = 'scheduled'
ORDER BY n.id;

-- name: finish_digest
UPDATE hora_deliveries SET state = :state, reason = :reason, provider_id = :provider_id,
    updated_at = :now
WHERE job_id = :job_id AND tenant_id = :tenant_id AND state = 'scheduled';

-- name: count_direct
-- How many of the recipient's notifications of a category went (or go) out on their own
-- since an instant: what a cap with over_limit="digest" compares with.
SELECT count(DISTINCT n.id) FROM hora_notifications n
JOIN hora_deliveries d ON d.notification_id = n.id
WHERE n.tenant_id = :tenant_id AND n.recipient_id = :recipient_id AND n.category = :category
  AND n.created_at >= :since AND d.digest_at IS NULL AND d.state <> 'suppressed';
