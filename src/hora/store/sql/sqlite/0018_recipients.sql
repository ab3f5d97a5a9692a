-- Notification recipients (hora.notify.recipients, docs/notifications.md "Recipients"): a
-- person of one tenant with a time zone, quiet hours, a holiday calendar, addresses per
-- channel and preferences. Instants: INTEGER microseconds; JSON documents as TEXT.
CREATE TABLE hora_recipients (
    tenant_id          TEXT NOT NULL,
    id                 TEXT NOT NULL CHECK (length(id) BETWEEN 1 AND 200),
    timezone           TEXT NOT NULL,
    locale             TEXT NOT NULL,
    quiet_hours        TEXT,              -- {"start": "21:00", "end": "08:00"} or NULL
    holidays           TEXT,              -- a country code of the holidays package, or NULL
    business_days_only INTEGER NOT NULL DEFAULT 0 CHECK (business_days_only IN (0, 1)),
    addresses          TEXT NOT NULL DEFAULT '{}',  -- channel -> address
    preferences        TEXT NOT NULL DEFAULT '{}',  -- {"channels": {...}, "categories": {...}}
    data               TEXT NOT NULL DEFAULT '{}',  -- what templates see as recipient.data
    -- sha256 hex of the unsubscribe token: the token itself is only ever in the link sent
    -- to the recipient, so a copy of the database cannot unsubscribe anyone.
    token_hash         TEXT NOT NULL,
    created_at         INTEGER NOT NULL,
    updated_at         INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, id)
) WITHOUT ROWID;
-- The public unsubscribe endpoint finds the recipient by its token alone (no API key).
CREATE UNIQUE INDEX hora_recipients_token ON hora_recipients (token_hash);
