-- Notifications (docs/notifications.md): templates, versioned per tenant, name and channel,
-- and the in-app inbox of each recipient. Instants: INTEGER microseconds.

-- A template: every put adds a version (max + 1); a send names a version or takes the
-- latest. channel '*' is the template of any channel without one of its own.
CREATE TABLE hora_templates (
    tenant_id  TEXT NOT NULL,
    name       TEXT NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    channel    TEXT NOT NULL CHECK (length(channel) BETWEEN 1 AND 40),
    version    INTEGER NOT NULL CHECK (version >= 1),
    subject    TEXT NOT NULL,
    text_body  TEXT NOT NULL,
    html_body  TEXT,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, name, channel, version)
) WITHOUT ROWID;

-- The in-app channel's messages (GET /v1/recipients/{id}/inbox). id is the delivery's id, so
-- a retried delivery stores its item once. data: JSON. An item is unread while read_at is
-- NULL, archived once archived_at is set (an archived item leaves the feed and its counts).
CREATE TABLE hora_inbox (
    tenant_id       TEXT NOT NULL,
    recipient_id    TEXT NOT NULL,
    id              TEXT NOT NULL,
    notification_id TEXT NOT NULL,
    category        TEXT NOT NULL,
    subject         TEXT NOT NULL,
    text            TEXT NOT NULL,
    data            TEXT NOT NULL DEFAULT '{}',
    created_at      INTEGER NOT NULL,
    read_at         INTEGER,
    archived_at     INTEGER,
    PRIMARY KEY (tenant_id, recipient_id, id)
) WITHOUT ROWID;
-- The feed, newest first (keyset on created_at, id).
CREATE INDEX hora_inbox_feed ON hora_inbox (tenant_id, recipient_id, created_at, id);
-- The unread count a badge shows on every page view: only the unread rows.
CREATE INDEX hora_inbox_unread ON hora_inbox (tenant_id, recipient_id)
    WHERE read_at IS NULL AND archived_at IS NULL;
