-- Notifications (docs/notifications.md): templates, versioned per tenant, name and channel,
-- and the in-app inbox of each recipient.

-- A template: every put adds a version (max + 1); a send names a version or takes the
-- latest. channel '*' is the template of any channel without one of its own.
CREATE TABLE hora_templates (
    tenant_id  text NOT NULL,
    name       text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    channel    text NOT NULL CHECK (length(channel) BETWEEN 1 AND 40),
    version    integer NOT NULL CHECK (version >= 1),
    subject    text NOT NULL,
    text_body  text NOT NULL,
    html_body  text,
    created_at timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, name, channel, version)
);

-- The in-app channel's messages (GET /v1/recipients/{id}/inbox). id is the delivery's id, so
-- a retried delivery stores its item once. An item is unread while read_at is NULL,
-- archived once archived_at is set (an archived item leaves the feed and its counts).
CREATE TABLE hora_inbox (
    tenant_id       text NOT NULL,
    recipient_id    text NOT NULL,
    id              text NOT NULL,
    notification_id text NOT NULL,
    category        text NOT NULL,
    subject         text NOT NULL,
    text            text NOT NULL,
    data            jsonb NOT NULL DEFAULT '{}',
    created_at      timestamptz NOT NULL,
    read_at         timestamptz,
    archived_at     timestamptz,
    PRIMARY KEY (tenant_id, recipient_id, id)
);
-- The feed, newest first (keyset on created_at, id).
CREATE INDEX hora_inbox_feed ON hora_inbox (tenant_id, recipient_id, created_at, id);
-- The unread count a badge shows on every page view: only the unread rows.
CREATE INDEX hora_inbox_unread ON hora_inbox (tenant_id, recipient_id)
    WHERE read_at IS NULL AND archived_at IS NULL;
