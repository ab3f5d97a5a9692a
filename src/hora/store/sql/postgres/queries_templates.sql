-- Named queries of notification templates (hora_templates).

-- name: lock_template_key
-- Puts of one (tenant, name, channel) queue here, so max + 1 is never taken twice.
SELECT pg_advisory_xact_lock(hashtextextended(
    'hora_templates:' || %(tenant_id)s || ':' || %(name)s || ':' || %(channel)s, 0));

-- name: put_template
INSERT INTO hora_templates (tenant_id, name, channel, version, subject, text_body, html_body,
                            created_at)
SELECT %(tenant_id)s, %(name)s, %(channel)s, coalesce(max(version), 0) + 1, %(subject)s,
       %(text_body)s, %(html_body)s, %(created_at)s
FROM hora_templates
WHERE tenant_id = %(tenant_id)s AND name = %(name)s AND channel = %(channel)s
RETURNING version;

-- name: get_template_version
SELECT * FROM hora_templates
WHERE tenant_id = %(tenant_id)s AND name = %(name)s AND channel = %(channel)s
  AND version = %(version)s;

-- name: get_template_latest
SELECT * FROM hora_templates
WHERE tenant_id = %(tenant_id)s AND name = %(name)s AND channel = %(channel)s
ORDER BY version DESC LIMIT 1;

-- name: list_templates
-- The latest version of each (name, channel) after the cursor, by name then channel.
SELECT DISTINCT ON (name, channel) * FROM hora_templates
WHERE tenant_id = %(tenant_id)s AND (name, channel) > (%(after_name)s, %(after_channel)s)
ORDER BY name, channel, version DESC LIMIT %(limit)s;

-- name: count_template_keys
SELECT count(*) FROM (SELECT DISTINCT name, channel FROM hora_templates
                      WHERE tenant_id = %(tenant_id)s) k;

-- name: count_template_versions
SELECT count(*) FROM hora_templates
WHERE tenant_id = %(tenant_id)s AND name = %(name)s AND channel = %(channel)s;

-- name: delete_template
-- Every version of the name (of one channel, or of all when channel is NULL).
DELETE FROM hora_templates
WHERE tenant_id = %(tenant_id)s AND name = %(name)s
  AND (%(channel)s::text IS NULL OR channel = %(channel)s::text);
