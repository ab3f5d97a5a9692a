-- Notifications (hora.notify, docs/notifications.md): one row per app.notify call, one per
-- (notification, channel) delivery, whose job (task hora.notify.deliver) does the sending.
-- Instants: timestamptz.
CREATE TABLE hora_notifications (
    id             TEXT PRIMARY KEY,
    tenant_id      TEXT NOT NULL,
    recipient_id   TEXT NOT NULL,
    category       TEXT NOT NULL,
    template       TEXT NOT NULL,
    data           JSONB NOT NULL,
    correlation_id TEXT,
    -- the same key for the same recipient within the window is one notification
    dedup_key      TEXT,
    dedup_until    TIMESTAMPTZ,
    fingerprint    TEXT NOT NULL,
    requested_at   TEXT,                     -- what the caller asked: "now", "local:09:00", ISO
    deliver_at     TIMESTAMPTZ NOT NULL,     -- resolved in the recipient's local time
    note           TEXT,                     -- why deliver_at moved (quiet hours, holiday)
    created_at     TIMESTAMPTZ NOT NULL
);
CREATE UNIQUE INDEX hora_notifications_dedup ON hora_notifications (tenant_id, recipient_id, dedup_key)
    WHERE dedup_key IS NOT NULL;
CREATE INDEX hora_notifications_recipient ON hora_notifications (tenant_id, recipient_id, id);
CREATE INDEX hora_notifications_correlation ON hora_notifications (tenant_id, correlation_id, id)
    WHERE correlation_id IS NOT NULL;

CREATE TABLE hora_deliveries (
    notification_id TEXT NOT NULL REFERENCES hora_notifications (id) ON DELETE CASCADE,
    channel         TEXT NOT NULL,
    tenant_id       TEXT NOT NULL,
    state           TEXT NOT NULL CHECK (state IN ('scheduled', 'sent', 'delivered', 'failed',
                                                   'suppressed')),
    reason          TEXT,
    address         TEXT,
    job_id          TEXT,
    provider_id     TEXT,
    -- a digested delivery: the instant of the digest it is folded into (its job_id is the
    -- digest's job, which sends every delivery folded into it as one message)
    digest_at       TIMESTAMPTZ,
    updated_at      TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (notification_id, channel)
);
CREATE INDEX hora_deliveries_state ON hora_deliveries (tenant_id, state);
-- A digest's job reads the deliveries folded into it.
CREATE INDEX hora_deliveries_job ON hora_deliveries (job_id) WHERE job_id IS NOT NULL;
