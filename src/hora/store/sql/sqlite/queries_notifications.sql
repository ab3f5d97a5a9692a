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
                             job_id, updated_at)
VALUES (:notification_id, :channel, :tenant_id, :state, :reason, :address, :job_id, :now);

-- name: get_notification
SELECT id, tenant_id, recipient_id, category, template, data, deliver_at, created_at,
       correlation_id, dedup_key, requested_at, note
FROM hora_notifications WHERE tenant_id = :tenant_id AND id = :id;

-- name: deliveries_of
SELECT notification_id, channel, state, reason, address, job_id, provider_id, updated_at
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
