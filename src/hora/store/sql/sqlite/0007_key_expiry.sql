-- API keys may expire, and the operator scope (every tenant) is split from a tenant's admin.
-- As in 0001: instants are INTEGER microseconds since the Unix epoch, UTC.

ALTER TABLE hora_api_keys ADD COLUMN expires_at INTEGER;  -- NULL: never expires

-- Before 0007 every admin key could manage every tenant. The default tenant's live admin
-- keys (the bootstrap key among them) keep that power as operators; other tenants' admin
-- keys become what the documentation always said: admins of their own tenant.
UPDATE hora_api_keys SET scopes = json_insert(scopes, '$[#]', 'operator')
WHERE tenant_id = 'default' AND revoked_at IS NULL
  AND EXISTS (SELECT 1 FROM json_each(hora_api_keys.scopes) WHERE value = 'admin')
  AND NOT EXISTS (SELECT 1 FROM json_each(hora_api_keys.scopes) WHERE value = 'operator');
