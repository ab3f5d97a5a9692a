-- Notification recipients (hora.notify.recipients, docs/notifications.md "Recipients"): a
-- person of one tenant with a time zone, quiet hours, a holiday calendar, addresses per
-- channel and preferences. As in 0001, ids compare byte-wise (COLLATE "C"), so listings
-- walk them in the order SQLite does and a keyset cursor means the same in both.
CREATE TABLE hora_recipients (
    tenant_id          text COLLATE "C" NOT NULL,
    id                 text COLLATE "C" NOT NULL CHECK (length(id) BETWEEN 1 AND 200),
    timezone           text NOT NULL,
    locale             text NOT NULL,
    quiet_hours        jsonb,             -- {"start": "21:00", "end": "08:00"} or NULL
    holidays           text,              -- a country code of the holidays package, or NULL
    business_days_only boolean NOT NULL DEFAULT false,
    addresses          jsonb NOT NULL DEFAULT '{}',  -- channel -> address
    preferences        jsonb NOT NULL DEFAULT '{}',  -- {"channels": {...}, "categories": {...}}
    data               jsonb NOT NULL DEFAULT '{}',  -- what templates see as recipient.data
    -- sha256 hex of the unsubscribe token: the token itself is only ever in the link sent
    -- to the recipient, so a copy of the database cannot unsubscribe anyone.
    token_hash         text NOT NULL,
    created_at         timestamptz NOT NULL,
    updated_at         timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, id)
);
-- The public unsubscribe endpoint finds the recipient by its token alone (no API key).
CREATE UNIQUE INDEX hora_recipients_token ON hora_recipients (token_hash);
