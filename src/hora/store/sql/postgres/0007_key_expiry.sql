-- API keys may expire, and the operator scope (every tenant) is split from a tenant's admin.

ALTER TABLE hora_api_keys ADD COLUMN expires_at timestamptz;  -- NULL: never expires

-- Before 0007 every admin key could manage every tenant. The default tenant's live admin
-- keys (the bootstrap key among them) keep that power as operators; other tenants' admin
-- keys become what the documentation always said: admins of their own tenant.
UPDATE hora_api_keys SET scopes = array_append(scopes, 'operator')
WHERE tenant_id = 'default' AND revoked_at IS NULL
  AND 'admin' = ANY (scopes) AND NOT 'operator' = ANY (scopes);
