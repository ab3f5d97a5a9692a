-- Named queries of notification templates (hora_templates). Instants: INTEGER microseconds.

-- name: put_template
-- The next version of (tenant, name, channel): max + 1 under SQLite's one writer.
INSERT INTO hora_templates (tenant_id, name, channel, version, subject, text_body, html_body,
                            created_at)
SELECT :tenant_id, :name, :channel, coalesce(max(version), 0) + 1, :subject, :text_body,
       :html_body, :created_at
FROM hora_templates WHERE tenant_id = :tenant_id AND name = :name AND channel = :channel
RETURNING version;

-- name: get_template_version
SELECT * FROM hora_templates
WHERE tenant_id = :tenant_id AND name = :name AND channel = :channel AND version = :version;

-- name: get_template_latest
SELECT * FROM hora_templates
WHERE tenant_id = :tenant_id AND name = :name AND channel = :channel
ORDER BY version DESC LIMIT 1;

-- name: list_templates
-- The latest version of each (name, channel) after the cursor, by name then channel.
SELECT t.* FROM hora_templates t
WHERE t.tenant_id = :tenant_id AND (t.name, t.channel) > (:after_name, :after_channel)
  AND t.version = (SELECT max(m.version) FROM hora_templates m
                   WHERE m.tenant_id = t.tenant_id AND m.name = t.name
                     AND m.channel = t.channel)
ORDER BY t.name, t.channel LIMIT :limit;

-- name: count_template_keys
-- How many (name, channel) pairs the tenant has (a bound on what it may store).
SELECT count(*) FROM (SELECT DISTINCT name, channel FROM hora_templates
                      WHERE tenant_id = :tenant_id);

-- name: count_template_versions
SELECT count(*) FROM hora_templates
WHERE tenant_id = :tenant_id AND name = :name AND channel = :channel;

-- name: delete_template
-- Every version of the name (of one channel, or of all when :channel is NULL).
DELETE FROM hora_templates
WHERE tenant_id = :tenant_id AND name = :name AND (:channel IS NULL OR channel = :channel);
